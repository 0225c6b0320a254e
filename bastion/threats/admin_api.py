"""Admin API routes for threats: events, their actions, retries, and matrices.

Mounted at /api/admin/v1/ behind admin auth (request.tenant, request.admin, request.role).
"""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import JsonResponse
from ninja import Body, Query, Router, Schema
from ninja.errors import HttpError

from bastion.api.auth import require_admin_role
from bastion.mdm.services import InvalidInput
from bastion.tenancy.models import AuditEntry
from bastion.threats import queries
from bastion.threats.catalog import catalog
from bastion.threats.matrix import deploy, matrix_for, set_row
from bastion.threats.models import ResponseAction, ThreatEvent
from bastion.threats.services import retry_action

router = Router(tags=["threats"])


class EventQuery(Schema):
    since: datetime | None = None
    until: datetime | None = None
    severity: str | None = None
    threat: str | None = None
    device: int | None = None
    group: int | None = None
    state: str | None = None
    outcome: str | None = None
    limit: int = 100
    offset: int = 0


def _invalid(error: InvalidInput) -> JsonResponse:
    return JsonResponse({"detail": error.message, "field": error.field}, status=422)


def audit(request, action: str, object_type: str, object_id, detail: dict) -> None:
    AuditEntry.objects.create(
        tenant=request.tenant,
        actor=request.admin.get_username(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
        source_ip=request.META.get("REMOTE_ADDR") or None,
    )


@router.get("/threat-catalog", summary="Every threat Bastion knows, and the device actions")
def threat_catalog(request):
    data = catalog()
    return {
        "version": data.version,
        "threats": [threat.as_dict() for threat in data.threats.values()],
        "device_actions": data.device_actions,
    }


@router.get("/threat-events", summary="Threat events, newest first, filtered")
def list_events(request, filters: Query[EventQuery]):
    try:
        events = queries.filter_events(request.tenant, queries.EventFilter(**filters.dict()))
    except InvalidInput as error:
        return _invalid(error)
    total = events.count()
    page = list(events[filters.offset : filters.offset + filters.limit])
    return {"total": total, "events": [queries.event_summary(event) for event in page]}


@router.get("/threat-events/{event_id}", summary="One event with its MDM actions")
def get_event(request, event_id: int):
    event = (
        ThreatEvent.objects.filter(tenant=request.tenant, pk=event_id)
        .select_related("device", "group", "matrix_version")
        .first()
    )
    if event is None:
        raise HttpError(404, "no such event")
    return queries.event_detail(event)


@router.post("/threat-actions/{action_id}/retry", summary="Retry a failed MDM action")
def retry(request, action_id: int):
    require_admin_role(request)
    action = ResponseAction.objects.filter(tenant=request.tenant, pk=action_id).first()
    if action is None:
        raise HttpError(404, "no such action")
    with transaction.atomic():
        if not retry_action(action):
            raise HttpError(409, f"the action is {action.state}, not failed")
        audit(request, "threat_action.retry", "response_action", action.pk, {})
    return {"id": action.pk, "state": ResponseAction.PENDING}


@router.get("/matrices/{group}", summary="A group's matrix: deployed rows and the draft")
def get_matrix(request, group: str):
    try:
        found = queries.find_group(request.tenant, group)
    except InvalidInput as error:
        raise HttpError(404, error.message) from None
    return queries.matrix_summary(found)


@router.put("/matrices/{group}/rows/{threat_id}", summary="Change one row of the draft")
def put_row(request, group: str, threat_id: str, changes: Body[dict[str, Any]]):
    require_admin_role(request)
    try:
        found = queries.find_group(request.tenant, group)
    except InvalidInput as error:
        raise HttpError(404, error.message) from None
    try:
        with transaction.atomic():
            row = set_row(matrix_for(found), threat_id, changes)
            audit(
                request,
                "matrix.set_row",
                "console_group",
                found.pk,
                {"threat_id": threat_id, "changes": changes},
            )
    except InvalidInput as error:
        return _invalid(error)
    return {"threat_id": threat_id, **row}


@router.post("/matrices/{group}/deploy", summary="Deploy the draft as a new version")
def deploy_matrix(request, group: str):
    require_admin_role(request)
    try:
        found = queries.find_group(request.tenant, group)
    except InvalidInput as error:
        raise HttpError(404, error.message) from None
    with transaction.atomic():
        version = deploy(matrix_for(found), request.admin.get_username())
        audit(request, "matrix.deploy", "console_group", found.pk, {"version": version.number})
    return {"group": found.pk, "version": version.number, "deployed_at": version.deployed_at}
