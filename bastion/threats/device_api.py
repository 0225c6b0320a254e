"""Device API routes for threats: the matrix, threat reports, mitigations.

Mounted at /api/device/v1/ behind DeviceAuth (request.device, request.tenant).
"""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from django.http import HttpResponse, JsonResponse
from ninja import Field, Router, Schema
from pydantic import AwareDatetime, ConfigDict, field_validator

from bastion.threats import ratelimit
from bastion.threats.catalog import NO_DEVICE_ACTION, catalog
from bastion.threats.matrix import HANDLED_ON_DEVICE, complete_rows, etag, matrix_for
from bastion.threats.models import ThreatEvent
from bastion.threats.services import Rejected, Report, mitigate, report_threats

router = Router(tags=["threats"])

MAX_BODY_BYTES = 256 * 1024
MAX_DETAILS_BYTES = 4096
MAX_BATCH = 100
EVENT_ID = r"^[A-Za-z0-9._:\-]{1,64}$"


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _iso_text(value):
    # Numbers would pass as epoch seconds; agents send ISO 8601 with a zone, nothing else.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with a time zone")
    return value


def _plausible(value: datetime) -> datetime:
    # A time near year one has no UTC form the database can store.
    if value.replace(tzinfo=None) < EARLIEST.replace(tzinfo=None) + timedelta(days=1):
        raise ValueError("is before the year 2000")
    return value


class Problem(Schema):
    detail: str
    field: str = ""


class EventIn(Schema):
    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, Field(pattern=EVENT_ID, description="The agent's own id.")]
    threat_id: Annotated[str, Field(min_length=1, max_length=64)]
    detected_at: AwareDatetime
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Network name and BSSID, app, process, profile: kept as given.",
    )

    @field_validator("detected_at", mode="before")
    @classmethod
    def iso_time(cls, value):
        return _iso_text(value)

    @field_validator("detected_at")
    @classmethod
    def plausible_time(cls, value):
        return _plausible(value)

    @field_validator("details")
    @classmethod
    def small_details(cls, value: dict) -> dict:
        text = json.dumps(value)
        if len(text) > MAX_DETAILS_BYTES:
            raise ValueError(f"details are larger than {MAX_DETAILS_BYTES} bytes")
        if "\\u0000" in text:
            raise ValueError("details hold a NUL character")
        return value


class BatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


class EventOut(Schema):
    event_id: str
    id: int
    threat_id: str
    severity: str
    state: str
    matrix_version: int | None
    handled_on_device: bool


class BatchOut(Schema):
    events: list[EventOut]


class MitigationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    mitigated_at: AwareDatetime
    threat_id: Annotated[str | None, Field(max_length=64)] = None

    @field_validator("mitigated_at", mode="before")
    @classmethod
    def iso_time(cls, value):
        return _iso_text(value)

    @field_validator("mitigated_at")
    @classmethod
    def plausible_time(cls, value):
        return _plausible(value)


class MatrixRowOut(Schema):
    threat_id: str
    name: str
    category: str
    severity: str
    enabled: bool
    alert_user: bool
    device_action: str
    handled_on_device: bool


class MatrixOut(Schema):
    version: int
    deployed_at: AwareDatetime
    threats: list[MatrixRowOut]


def _guard(request) -> HttpResponse | None:
    """Per-device rate limit and body size, before anything is read or stored."""
    wait = ratelimit.hit(request.device.pk)
    if wait is not None:
        response = JsonResponse({"detail": "too many requests from this device"}, status=429)
        response["Retry-After"] = str(wait)
        return response
    if len(request.body) > MAX_BODY_BYTES:
        return JsonResponse(
            {"detail": f"the body is larger than {MAX_BODY_BYTES} bytes", "field": "body"},
            status=413,
        )
    return None


def _problem(error: Rejected) -> JsonResponse:
    return JsonResponse({"detail": error.message, "field": error.field}, status=error.status)


def _event_out(event: ThreatEvent) -> dict:
    return {
        "event_id": event.agent_event_id,
        "id": event.pk,
        "threat_id": event.threat_id,
        "severity": event.severity,
        "state": event.state,
        "matrix_version": event.matrix_version.number if event.matrix_version else None,
        "handled_on_device": event.handled_on_device,
    }


def agent_matrix(device) -> tuple[dict, str]:
    """The matrix of the device's group as its agent sees it, and its version tag."""
    version = matrix_for(device.group).current
    rows = complete_rows(version.rows)
    on_device = device.agent_kind == "mdm_builtin"
    allowed = catalog().device_actions.get(device.platform, {})
    threats = []
    for threat in catalog().threats.values():
        if device.platform not in threat.platforms:
            continue
        row = rows[threat.id]
        action = row["device_action"]
        threats.append(
            {
                "threat_id": threat.id,
                "name": threat.name,
                "category": threat.category,
                "severity": row["severity"],
                "enabled": row["enabled"],
                "alert_user": row["alert_user"],
                "device_action": action if action in allowed else NO_DEVICE_ACTION,
                "handled_on_device": on_device and row["mdm_action"] == HANDLED_ON_DEVICE,
            }
        )
    body = {
        "version": version.number,
        "deployed_at": version.deployed_at.isoformat(),
        "threats": threats,
    }
    return body, etag(version)


def _report(event: EventIn) -> Report:
    return Report(event.event_id, event.threat_id, event.detected_at, event.details)


@router.get(
    "/matrix",
    response={200: MatrixOut, 304: None, 429: Problem},
    summary="The Threat Response Matrix of the device's group",
    description="Send the last ETag in If-None-Match: an unchanged matrix answers 304.",
)
def get_matrix(request):
    refused = _guard(request)
    if refused:
        return refused

    body, tag = agent_matrix(request.device)
    if request.headers.get("If-None-Match") == tag:
        response = HttpResponse(status=304)
        response["ETag"] = tag
        return response

    response = JsonResponse(body)
    response["ETag"] = tag
    return response


@router.post(
    "/threats",
    response={200: EventOut, 404: Problem, 409: Problem, 413: Problem, 422: Problem, 429: Problem},
    summary="Report one threat; a repeated event_id is answered as the first time",
)
def report_one(request, event: EventIn):
    refused = _guard(request)
    if refused:
        return refused
    try:
        (stored,) = report_threats(request.device, [_report(event)])
    except Rejected as error:
        return _problem(error)
    return _event_out(stored)


@router.post(
    "/threats/batch",
    response={200: BatchOut, 409: Problem, 413: Problem, 422: Problem, 429: Problem},
    summary="Report up to 100 threats at once; one bad event stores none",
)
def report_batch(request, batch: BatchIn):
    refused = _guard(request)
    if refused:
        return refused
    try:
        stored = report_threats(request.device, [_report(event) for event in batch.events])
    except Rejected as error:
        return _problem(error)
    return {"events": [_event_out(event) for event in stored]}


@router.post(
    "/threats/{event_id}/mitigation",
    response={200: EventOut, 404: Problem, 409: Problem, 413: Problem, 422: Problem, 429: Problem},
    summary="Report that a threat is gone",
    description="For an event not reported yet, name its threat_id: the mitigation is kept.",
)
def report_mitigation(request, event_id: str, body: MitigationIn):
    refused = _guard(request)
    if refused:
        return refused
    if not re.fullmatch(EVENT_ID, event_id):
        return JsonResponse(
            {"detail": "use 1 to 64 letters, digits and . _ : -", "field": "event_id"},
            status=422,
        )
    try:
        event = mitigate(request.device, event_id, body.mitigated_at, body.threat_id)
    except Rejected as error:
        return _problem(error)
    return _event_out(event)
