"""Reading threat events and matrices for administrators: shared by the admin API and
the command line. Every function takes the tenant and filters by it."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from bastion.inventory.models import ConsoleGroup
from bastion.mdm.models import ActionTarget
from bastion.mdm.services import InvalidInput
from bastion.tenancy.models import Tenant
from bastion.threats.catalog import SEVERITIES, catalog
from bastion.threats.matrix import current_rows, draft_rows, matrix_for, usable_targets
from bastion.threats.models import ResponseAction, ThreatEvent

OUTCOMES = ("none", "on_device", "pending", "done", "failed")
MAX_LIMIT = 500


@dataclass
class EventFilter:
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


def filter_events(tenant: Tenant, f: EventFilter) -> QuerySet:
    if f.severity and f.severity not in SEVERITIES:
        raise InvalidInput("severity", f"must be one of {', '.join(SEVERITIES)}")
    if f.state and f.state not in dict(ThreatEvent.STATES):
        raise InvalidInput("state", "must be active or mitigated")
    if f.outcome and f.outcome not in OUTCOMES:
        raise InvalidInput("outcome", f"must be one of {', '.join(OUTCOMES)}")
    if not 1 <= f.limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    if f.offset < 0:
        raise InvalidInput("offset", "must not be negative")

    events = ThreatEvent.objects.filter(tenant=tenant)
    if f.since:
        events = events.filter(detected_at__gte=f.since)
    if f.until:
        events = events.filter(detected_at__lt=f.until)
    if f.severity:
        events = events.filter(severity=f.severity)
    if f.threat:
        events = events.filter(threat_id=f.threat)
    if f.device:
        events = events.filter(device_id=f.device)
    if f.group:
        events = events.filter(group_id=f.group)
    if f.state:
        events = events.filter(state=f.state)
    if f.outcome:
        events = events.filter(_outcome_q(f.outcome))
    return events.select_related("device", "group", "matrix_version").order_by("-detected_at")


def _outcome_q(outcome: str) -> Q:
    def having(*states):
        return Exists(ResponseAction.objects.filter(event=OuterRef("pk"), state__in=states))

    failed = having(ResponseAction.FAILED)
    open_ = having(*ResponseAction.OPEN_STATES)
    done = having(ResponseAction.DONE)
    if outcome == "on_device":
        return Q(handled_on_device=True)
    if outcome == "failed":
        return Q(failed)
    if outcome == "pending":
        return Q(open_) & ~Q(failed)
    if outcome == "done":
        return Q(done) & ~Q(failed) & ~Q(open_)
    return Q(handled_on_device=False) & ~Q(failed) & ~Q(open_) & ~Q(done)


def outcome_of(event: ThreatEvent, actions: list[ResponseAction]) -> str:
    states = {action.state for action in actions}
    if event.handled_on_device:
        return "on_device"
    if ResponseAction.FAILED in states:
        return "failed"
    if states & set(ResponseAction.OPEN_STATES):
        return "pending"
    if ResponseAction.DONE in states:
        return "done"
    return "none"


def event_summary(event: ThreatEvent, actions: list[ResponseAction] | None = None) -> dict:
    actions = list(event.actions.order_by("pk")) if actions is None else actions
    threat = catalog().get(event.threat_id)
    device = event.device
    return {
        "id": event.pk,
        "event_id": event.agent_event_id,
        "threat_id": event.threat_id,
        "threat": threat.name if threat else event.threat_id,
        "category": threat.category if threat else "",
        "severity": event.severity,
        "state": event.state,
        "detected_at": event.detected_at,
        "received_at": event.received_at,
        "mitigated_at": event.mitigated_at,
        "device": {
            "id": device.pk,
            "mdm_id": device.mdm_id,
            "platform": device.platform,
            "model": device.model,
        },
        "group": {"id": event.group_id, "name": event.group.name if event.group else ""},
        "matrix_version": event.matrix_version.number if event.matrix_version else None,
        "handled_on_device": event.handled_on_device,
        "ignored": event.ignored,
        "outcome": outcome_of(event, actions),
    }


def event_detail(event: ThreatEvent) -> dict:
    actions = list(event.actions.order_by("pk"))
    data = event_summary(event, actions)
    data["details"] = event.details
    data["actions"] = [action_summary(action) for action in actions]
    return data


def action_summary(action: ResponseAction) -> dict:
    return {
        "id": action.pk,
        "op": action.op,
        "kind": action.kind,
        "target": action.name or action.attribute,
        "attribute": action.attribute,
        "state": action.state,
        "attempts": action.attempts,
        "last_error": action.last_error,
        "next_attempt_at": action.next_attempt_at,
        "done_at": action.done_at,
        "undo_on_mitigation": action.undo_on_mitigation,
    }


def find_group(tenant: Tenant, key: str) -> ConsoleGroup:
    """A console group by id, exact name, or "default" for the Default Group."""
    if key == "default":
        return ConsoleGroup.default_for(tenant)
    groups = ConsoleGroup.objects.filter(tenant=tenant).select_related("integration")
    group = groups.filter(pk=int(key)).first() if str(key).isdigit() else None
    group = group or groups.filter(name=key).first()
    if group is None:
        raise InvalidInput("group", f"no console group {key!r}")
    return group


def matrix_summary(group: ConsoleGroup) -> dict:
    matrix = matrix_for(group)
    version = matrix.current
    targets = {t.pk: t for t in ActionTarget.objects.filter(integration_id=group.integration_id)}
    deployed, draft = current_rows(matrix), draft_rows(matrix)

    def rows(values: dict) -> list[dict]:
        out = []
        for threat in catalog().threats.values():
            row = dict(values[threat.id])
            target = targets.get(row["mdm_action"]) if isinstance(row["mdm_action"], int) else None
            row["mdm_action_name"] = target.name if target else (row["mdm_action"] or "")
            out.append(
                {
                    "threat_id": threat.id,
                    "name": threat.name,
                    "category": threat.category,
                    "mitigable": threat.mitigable,
                    **row,
                }
            )
        return out

    return {
        "group": {"id": group.pk, "name": group.name},
        "version": version.number,
        "deployed_at": version.deployed_at,
        "deployed_by": version.deployed_by,
        "has_draft": bool(matrix.draft) and matrix.draft != version.rows,
        "rows": rows(deployed),
        "draft": rows(draft),
        "mdm_actions": [
            {"id": t.pk, "kind": t.kind, "name": t.name, "attribute": t.attribute}
            for t in usable_targets(group)
        ],
    }
