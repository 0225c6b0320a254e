"""What happens when an agent reports: events stored with the actions their row asks for
(one transaction, the outbox), mitigations, and settling a device that left."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bastion.inventory.models import Device
from bastion.mdm.models import ActionTarget, Integration
from bastion.threats.catalog import catalog
from bastion.threats.matrix import (
    HANDLED_ON_DEVICE,
    REMOVE,
    complete_rows,
    matrix_for,
)
from bastion.threats.models import AdminNotice, ResponseAction, ThreatEvent

log = logging.getLogger(__name__)


class Rejected(Exception):
    """An agent's report that can't be accepted; `status` and `field` say why."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message


@dataclass
class Report:
    event_id: str
    threat_id: str
    detected_at: datetime
    details: dict


def notify_window() -> timedelta:
    return timedelta(minutes=getattr(settings, "BASTION_THREAT_NOTIFY_WINDOW_MINUTES", 60))


def check_report(device: Device, report: Report, now: datetime) -> None:
    threat = catalog().get(report.threat_id)
    if threat is None:
        raise Rejected(422, "threat_id", f"unknown threat {report.threat_id!r}")
    if device.platform not in threat.platforms:
        raise Rejected(
            422, "threat_id", f"{report.threat_id!r} does not exist on {device.platform}"
        )
    if report.detected_at > now + timedelta(minutes=5):
        raise Rejected(422, "detected_at", "is in the future")


def report_threats(device: Device, reports: list[Report]) -> list[ThreatEvent]:
    """Stores each new event with its MDM actions and notice; repeats return the stored
    event. Validates every report before writing any, so a bad one stores nothing."""
    now = timezone.now()
    for report in reports:
        check_report(device, report, now)

    events = []
    with transaction.atomic():
        # One writer per device at a time: decisions such as "another active threat still
        # needs this label" read a stable picture.
        # The group's matrix comes with the device: a handful of statements per batch,
        # whatever its size (the repeats in one query, the new events, their actions and
        # notices each in one insert).
        device = (
            Device.objects.select_for_update(of=("self",))
            .select_related("group__integration", "group__matrix__current")
            .get(pk=device.pk)
        )
        known = {
            event.agent_event_id: event
            for event in ThreatEvent.objects.filter(
                device=device, agent_event_id__in={report.event_id for report in reports}
            )
        }
        matrix = getattr(device.group, "matrix", None)
        if matrix is None or matrix.current is None:
            matrix = matrix_for(device.group)
        rows = complete_rows(matrix.current.rows)
        created = []
        for report in reports:
            event = known.get(report.event_id)
            if event is not None:
                if event.threat_id != report.threat_id:
                    raise Rejected(
                        409, "event_id", f"{report.event_id!r} was already used for another threat"
                    )
                events.append(event)
                continue
            threat = catalog().get(report.threat_id)
            row = rows[threat.id]
            event = _new_event(device, report, now, matrix.current, row)
            known[report.event_id] = event
            events.append(event)
            created.append((event, row, threat))

        if created:
            ThreatEvent.objects.bulk_create([event for event, _, _ in created])
            actions = add_actions(created)
            notices = add_notices(created, now)
            for event, _, threat in created:
                log.info("threat event=%s device=%s threat=%s", event.pk, device.pk, threat.id)
            transaction.on_commit(lambda: enqueue(actions, notices))
    return events


def _new_event(device: Device, report: Report, now: datetime, version, row: dict) -> ThreatEvent:
    return ThreatEvent(
        tenant_id=device.tenant_id,
        device=device,
        group=device.group,
        matrix_version=version,
        agent_event_id=report.event_id,
        threat_id=report.threat_id,
        severity=row["severity"],
        detected_at=report.detected_at,
        received_at=now,
        details=report.details,
        ignored=not row["enabled"],
        # Only the MDM's built-in agent takes local actions; a standalone agent on such a
        # row gets no MDM answer at all.
        handled_on_device=(
            row["enabled"]
            and row["mdm_action"] == HANDLED_ON_DEVICE
            and device.agent_kind == Device.AGENT_MDM
        ),
    )


def add_actions(events: list[tuple]) -> list[int]:
    """Stores the MDM applies that the rows of stored (event, row, threat) ask for;
    returns the ids of those to deliver."""
    wanted = [
        (event, row, threat)
        for event, row, threat in events
        if row["enabled"] and row["mdm_action"] not in (None, HANDLED_ON_DEVICE)
    ]
    if not wanted:
        return []
    targets = ActionTarget.objects.in_bulk(list({row["mdm_action"] for _, row, _ in wanted}))
    actions = []
    for event, row, threat in wanted:
        target = targets.get(row["mdm_action"])
        undo = row["mitigation"] == REMOVE and threat.mitigable
        actions.append(apply_action(event, event.device, target, undo))
    ResponseAction.objects.bulk_create(actions, batch_size=500)
    return [action.pk for action in actions if action.state == ResponseAction.PENDING]


def add_notices(events: list[tuple], now: datetime) -> list[int]:
    """Stores an administrator notice for each stored (event, row, threat) whose row asks
    for one, unless the device had one for that threat within the window; returns ids."""
    wanted = [
        (event, threat) for event, row, threat in events if row["enabled"] and row["notify_admin"]
    ]
    if not wanted:
        return []
    recent = set(
        AdminNotice.objects.filter(
            device_id__in={event.device_id for event, _ in wanted},
            threat_id__in={threat.id for _, threat in wanted},
            created_at__gte=now - notify_window(),
        ).values_list("device_id", "threat_id")
    )
    notices = []
    for event, threat in wanted:
        if (event.device_id, threat.id) in recent:
            continue
        recent.add((event.device_id, threat.id))
        notices.append(
            AdminNotice(
                tenant_id=event.tenant_id, event=event, device=event.device, threat_id=threat.id
            )
        )
    AdminNotice.objects.bulk_create(notices, batch_size=500)
    return [notice.pk for notice in notices]


def apply_action(event, device: Device, target: ActionTarget | None, undo: bool):
    """The unsaved apply of `target` that a matrix row asks for on `device`.

    A target the MDM no longer offers fails at once, visibly, instead of waiting.
    """
    action = ResponseAction(
        tenant_id=device.tenant_id,
        event=event,
        device=device,
        integration_id=device.integration_id,
        op=ResponseAction.APPLY,
        target=target,
        kind=target.kind if target else "",
        name=target.name if target else "",
        attribute=target.attribute if target else "",
        undo_on_mitigation=undo and (target is None or target.kind != ActionTarget.LOCK),
    )
    problem = ""
    if target is None:
        problem = "the matrix names an MDM action that no longer exists"
    elif not target.usable:
        problem = f"{target.name!r} can't be used any more: {target.blocker}"
    elif target.integration_id != device.integration_id:
        problem = "the action belongs to another MDM than the device's"
    if problem:
        action.state = ResponseAction.FAILED
        action.last_error = problem
    return action


def mitigate(
    device: Device, event_id: str, mitigated_at: datetime, threat_id: str | None = None
) -> ThreatEvent:
    """Marks the event mitigated and undoes what its row says to undo.

    A mitigation for an event never reported is kept when it names its threat (the report
    may still be on its way: it will then be answered as a repeat and start nothing)."""
    now = timezone.now()
    if mitigated_at > now + timedelta(minutes=5):
        raise Rejected(422, "mitigated_at", "is in the future")

    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        event = ThreatEvent.objects.filter(device=device, agent_event_id=event_id).first()
        if event is None:
            if not threat_id:
                raise Rejected(404, "event_id", f"no event {event_id!r} on this device")
            report = Report(event_id, threat_id, mitigated_at, {})
            check_report(device, report, now)
            matrix = matrix_for(device.group)
            event = ThreatEvent.objects.create(
                tenant_id=device.tenant_id,
                device=device,
                group=device.group,
                matrix_version=matrix.current,
                agent_event_id=event_id,
                threat_id=threat_id,
                severity=complete_rows(matrix.current.rows)[threat_id]["severity"],
                detected_at=mitigated_at,
                received_at=now,
                state=ThreatEvent.MITIGATED,
                mitigated_at=mitigated_at,
            )
            return event
        if threat_id and threat_id != event.threat_id:
            raise Rejected(409, "threat_id", f"event {event_id!r} is about another threat")
        if event.state == ThreatEvent.MITIGATED:
            return event

        event.state = ThreatEvent.MITIGATED
        event.mitigated_at = mitigated_at
        event.save(update_fields=["state", "mitigated_at"])
        undos = _undo_for(event)
        transaction.on_commit(lambda: _enqueue(undos))
    return event


def _undo_for(event: ThreatEvent) -> list[int]:
    undos = []
    applies = event.actions.filter(op=ResponseAction.APPLY, undo_on_mitigation=True, settled=False)
    for apply in applies:
        if apply.state == ResponseAction.PENDING:
            cancelled = ResponseAction.objects.filter(
                pk=apply.pk, state=ResponseAction.PENDING
            ).update(state=ResponseAction.CANCELLED, last_error="mitigated before delivery")
            if cancelled:
                continue
            apply.refresh_from_db()
        if apply.state not in (ResponseAction.CLAIMED, ResponseAction.DONE):
            continue
        if still_needed(apply):
            continue
        undos.append(_add_undo(apply).pk)
    return undos


def still_needed(apply: ResponseAction) -> bool:
    """Whether another active threat on the device still needs the same label or group."""
    return (
        ResponseAction.objects.filter(
            device_id=apply.device_id,
            op=ResponseAction.APPLY,
            kind=apply.kind,
            name=apply.name,
            attribute=apply.attribute,
            settled=False,
            event__state=ThreatEvent.ACTIVE,
            state__in=[ResponseAction.PENDING, ResponseAction.CLAIMED, ResponseAction.DONE],
        )
        .exclude(event_id=apply.event_id)
        .exists()
    )


def _add_undo(apply: ResponseAction) -> ResponseAction:
    existing = apply.undos.exclude(state=ResponseAction.CANCELLED).first()
    if existing is not None:
        return existing
    undo = undo_action(apply)
    undo.save()
    return undo


def undo_action(apply: ResponseAction) -> ResponseAction:
    """The unsaved undo of an apply: the same target, on the same device and event."""
    return ResponseAction(
        tenant_id=apply.tenant_id,
        event_id=apply.event_id,
        device_id=apply.device_id,
        integration_id=apply.integration_id,
        op=ResponseAction.UNDO,
        undoes=apply,
        target_id=apply.target_id,
        kind=apply.kind,
        name=apply.name,
        attribute=apply.attribute,
    )


def settle_device_actions(device_ids, undo: bool, deliver_now: bool = False) -> list[int]:
    """Ends what the response engine owes devices that left the inventory or their group.

    Pending applies are cancelled. Applies already made (or in flight) are undone when
    `undo` is true, once per label or attribute, and left in the MDM otherwise; a lock is
    never undone. Their events stay. With `deliver_now` the undos are delivered here,
    before returning (for a caller about to delete the integration they need).
    Returns the ids of the undo actions.
    """
    ids = list(device_ids)
    undos = []
    with transaction.atomic():
        ResponseAction.objects.filter(
            device_id__in=ids, op=ResponseAction.APPLY, state=ResponseAction.PENDING
        ).update(
            state=ResponseAction.CANCELLED,
            settled=True,
            last_error="the device left the inventory or its group before delivery",
        )
        made = ResponseAction.objects.filter(
            device_id__in=ids,
            op=ResponseAction.APPLY,
            settled=False,
            state__in=[ResponseAction.CLAIMED, ResponseAction.DONE],
        ).order_by("pk")
        seen = set()
        for apply in made:
            key = (apply.device_id, *apply.target_key)
            if undo and apply.kind != ActionTarget.LOCK and key not in seen:
                seen.add(key)
                undos.append(_add_undo(apply).pk)
        made.update(settled=True)
        if not deliver_now:
            transaction.on_commit(lambda: _enqueue(undos))

    if deliver_now:
        from bastion.threats.engine import deliver

        for action_id in undos:
            deliver(action_id)
    return undos


def settle_for_devices(device_ids) -> None:
    """Settles devices with their integration's choice about undoing applied actions."""
    rows = Device.objects.filter(pk__in=list(device_ids)).values_list("pk", "integration_id")
    by_integration: dict[int | None, list[int]] = {}
    for pk, integration_id in rows:
        by_integration.setdefault(integration_id, []).append(pk)
    undo_for = dict(
        Integration.objects.filter(pk__in=[i for i in by_integration if i]).values_list(
            "pk", "undo_actions_on_removal"
        )
    )
    for integration_id, ids in by_integration.items():
        settle_device_actions(ids, undo=undo_for.get(integration_id, False))


def retry_action(action: ResponseAction) -> bool:
    """Puts a failed action back in the queue; False when it is not failed."""
    reset = ResponseAction.objects.filter(pk=action.pk, state=ResponseAction.FAILED).update(
        state=ResponseAction.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        claim_token="",
        claimed_at=None,
    )
    if reset:
        transaction.on_commit(lambda: _enqueue([action.pk]))
    return bool(reset)


def enqueue(action_ids: list[int], notice_ids: list[int]) -> None:
    """Hands stored actions and notices to the workers (after the commit that stored them)."""
    _enqueue(action_ids)
    _enqueue_notices(notice_ids)


def _enqueue(action_ids: list[int]) -> None:
    from bastion.threats.tasks import deliver_action

    for action_id in action_ids:
        _send(deliver_action, action_id)


def _enqueue_notices(notice_ids: list[int]) -> None:
    from bastion.threats.tasks import send_notice

    for notice_id in notice_ids:
        _send(send_notice, notice_id)


def _send(task, object_id: int) -> None:
    # The row is stored: a broker that is down loses nothing, the sweep sends it later.
    try:
        task.delay(object_id)
    except Exception:  # noqa: BLE001 - any broker failure is recovered by the sweep
        log.warning("enqueue failed task=%s id=%s; the sweep will retry", task.name, object_id)
