"""The threat log, one event's page, and retrying a failed MDM action."""

from datetime import datetime, time

from django.contrib import messages
from django.db.models import Case, IntegerField, Value, When
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from bastion.console.views.base import audit, console_view, paginate, query_without_page
from bastion.inventory.models import ConsoleGroup
from bastion.mdm.services import InvalidInput
from bastion.threats import queries
from bastion.threats.catalog import SEVERITIES, catalog
from bastion.threats.models import ResponseAction, ThreatEvent
from bastion.threats.services import retry_action

OUTCOME_NAMES = {
    "none": "No MDM action",
    "on_device": "Handled on the device",
    "pending": "MDM action pending",
    "done": "MDM action done",
    "failed": "MDM action failed",
}
SORTS = {"-time": ["-detected_at", "-pk"], "time": ["detected_at", "pk"], "severity": None}


def _day(value: str, field: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(field, "write the date as YYYY-MM-DD") from None
    moment = datetime.combine(day, time.max if end else time.min)
    return timezone.make_aware(moment, timezone.get_current_timezone())


def _number(value: str, field: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(field, "must be a number")
    return int(value)


@console_view
def threat_log(request):
    params = request.GET
    names = {threat.id: threat.name for threat in catalog().threats.values()}
    error = ""
    try:
        wanted = queries.EventFilter(
            since=_day(params.get("since", ""), "since"),
            until=_day(params.get("until", ""), "until", end=True),
            severity=params.get("severity") or None,
            threat=params.get("threat") or None,
            device=_number(params.get("device", ""), "device"),
            group=_number(params.get("group", ""), "group"),
            state=params.get("state") or None,
            outcome=params.get("outcome") or None,
        )
        if wanted.threat and wanted.threat not in names:
            raise InvalidInput("threat", "no such threat in the catalog")
        events = queries.filter_events(request.tenant, wanted)
    except InvalidInput as problem:
        error = f"{problem.field}: {problem.message}"
        events = ThreatEvent.objects.none()

    sort = params.get("sort", "-time")
    if sort == "severity":
        rank = Case(
            *[When(severity=name, then=Value(index)) for index, name in enumerate(SEVERITIES)],
            default=Value(len(SEVERITIES)),
            output_field=IntegerField(),
        )
        events = events.order_by(rank, "-detected_at", "-pk")
    else:
        events = events.order_by(*SORTS.get(sort) or SORTS["-time"])

    page = paginate(request, events.prefetch_related("actions"))
    for event in page:
        event.threat_name = names.get(event.threat_id, event.threat_id)
        event.outcome = queries.outcome_of(event, list(event.actions.all()))
        event.outcome_name = OUTCOME_NAMES[event.outcome]

    context = {
        "page": page,
        "query": query_without_page(request),
        "error": error,
        "severities": SEVERITIES,
        "threats": sorted(names.items(), key=lambda item: item[1]),
        "groups": ConsoleGroup.objects.filter(tenant=request.tenant).order_by("name"),
        "states": ThreatEvent.STATES,
        "outcomes": OUTCOME_NAMES.items(),
        "filters": {key: params.get(key, "") for key in (
            "since", "until", "severity", "threat", "device", "group", "state", "outcome", "sort"
        )},
    }  # fmt: skip
    return render(request, "console/threats.html", context, status=400 if error else 200)


@console_view
def threat_detail(request, event_id: int):
    event = get_object_or_404(
        ThreatEvent.objects.select_related("device", "group", "matrix_version"),
        tenant=request.tenant,
        pk=event_id,
    )
    data = queries.event_detail(event)
    row = {}
    if event.matrix_version is not None:
        row = event.matrix_version.rows.get(event.threat_id, {})
    context = {
        "event": event,
        "data": data,
        "row": row,
        "outcome_name": OUTCOME_NAMES.get(data["outcome"], data["outcome"]),
    }
    return render(request, "console/threat.html", context)


@require_POST
@console_view
def retry(request, event_id: int, action_id: int):
    action = get_object_or_404(
        ResponseAction, tenant=request.tenant, event_id=event_id, pk=action_id
    )
    if retry_action(action):
        audit(request, "mdm_action_retried", "response_action", action.pk, event=event_id)
        messages.success(request, "The MDM action is queued again.")
    else:
        messages.info(request, "This MDM action has not failed: nothing to retry.")
    return redirect("console:threat", event_id=event_id)
