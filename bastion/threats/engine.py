"""Delivers the response engine's outbox: one MDM call per action row.

A worker claims an action with a compare-and-set before calling the MDM, so two
deliveries of one message never both call it. Calls to one device are serialised (no
other fresh claim on the device) because Cloud replaces the whole attribute map on each
write; and an action waits for the earlier open actions on the same label or attribute,
so an undo never overtakes its apply.
"""

import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from bastion.inventory.models import Device
from bastion.mdm.connectors.base import ActionSpec, MdmError
from bastion.mdm.models import ActionTarget
from bastion.tenancy.models import AuditEntry
from bastion.threats.models import ResponseAction

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BUSY_RETRY_SECONDS = 2.0


def claim_timeout() -> timedelta:
    """How long a claim protects an action; past it the worker is presumed dead."""
    return timedelta(seconds=getattr(settings, "BASTION_ACTION_CLAIM_SECONDS", 300))


def backoff(attempt: int, retry_after: float | None = None) -> float:
    delay = min(600.0, 10.0 * 2 ** (attempt - 1))
    delay += random.uniform(0, delay / 4)
    if retry_after:
        delay = max(delay, min(float(retry_after), 3600.0))
    return delay


@dataclass
class Outcome:
    status: str  # done, retry, failed, busy, skipped
    retry_in: float | None = None
    error: str = ""


def claimable(now: datetime) -> Q:
    return Q(state=ResponseAction.PENDING, next_attempt_at__lte=now) | Q(
        state=ResponseAction.CLAIMED, claimed_at__lt=now - claim_timeout()
    )


def claim(action_id: int, now: datetime | None = None) -> tuple[str, str]:
    """Returns ("claimed", token), ("busy", "") or ("skipped", "")."""
    now = now or timezone.now()
    with transaction.atomic():
        action = ResponseAction.objects.filter(claimable(now), pk=action_id).first()
        if action is None:
            return "skipped", ""

        # The device row is the per-device lock: one claimer at a time decides.
        Device.objects.select_for_update().filter(pk=action.device_id).first()
        fresh = Q(state=ResponseAction.CLAIMED, claimed_at__gte=now - claim_timeout())
        same_target_first = Q(
            state__in=ResponseAction.OPEN_STATES,
            pk__lt=action.pk,
            kind=action.kind,
            name=action.name,
            attribute=action.attribute,
        )
        ahead = ResponseAction.objects.filter(device_id=action.device_id).exclude(pk=action.pk)
        if ahead.filter(fresh | same_target_first).exists():
            return "busy", ""

        token = secrets.token_hex(8)
        won = ResponseAction.objects.filter(claimable(now), pk=action_id).update(
            state=ResponseAction.CLAIMED,
            claimed_at=now,
            claim_token=token,
            attempts=F("attempts") + 1,
        )
    return ("claimed", token) if won else ("skipped", "")


def deliver(action_id: int, now: datetime | None = None) -> Outcome:
    status, token = claim(action_id, now)
    if status != "claimed":
        return Outcome(status, BUSY_RETRY_SECONDS if status == "busy" else None)

    action = ResponseAction.objects.select_related("device", "integration").get(pk=action_id)
    problem = _cannot_deliver(action)
    if problem:
        _finish(action, token, ResponseAction.CANCELLED, problem)
        return Outcome("skipped", error=problem)
    if not action.kind:
        _finish(action, token, ResponseAction.FAILED, "the action has no MDM target")
        return Outcome("failed", error="no target")

    spec = ActionSpec(kind=action.kind, name=action.name, attribute=action.attribute)
    space = action.integration.space_id
    connector = _connector(action.integration)
    try:
        if action.op == ResponseAction.APPLY:
            connector.apply_action(space, spec, action.device.mdm_id)
        else:
            connector.undo_action(space, spec, action.device.mdm_id)
    except MdmError as error:
        return _failed(action, token, error, f"{type(error).__name__}: {error}")
    except Exception as error:  # noqa: BLE001 - a bug must not leave the action claimed
        log.exception("action delivery crashed action=%s", action.pk)
        return _failed(action, token, error, f"internal error: {type(error).__name__}")

    _finish(action, token, ResponseAction.DONE, "")
    log.info("action done action=%s op=%s device=%s", action.pk, action.op, action.device_id)
    return Outcome("done")


# One connector per integration and worker process, kept between deliveries: a burst of
# threats then reuses one connection to the MDM instead of building a client per action.
_CONNECTORS: dict[int, tuple[tuple, object]] = {}


def _connector(integration):
    from bastion.mdm.services import connector_for

    # Any change to how the MDM is reached makes a new one.
    key = (
        integration.kind,
        integration.url,
        integration.username,
        integration.password_encrypted,
        integration.ca_bundle,
    )
    kept = _CONNECTORS.get(integration.pk)
    if kept is not None and kept[0] == key:
        return kept[1]
    if kept is not None:
        kept[1].close()
    # The outbox does the retrying, with its own backoff: the connector tries once.
    connector = connector_for(integration, retries=0)
    _CONNECTORS[integration.pk] = (key, connector)
    return connector


def _cannot_deliver(action: ResponseAction) -> str:
    if action.integration is None:
        return "the MDM integration was removed"
    if action.op == ResponseAction.APPLY and action.device.state == Device.REMOVED:
        return "the device left the inventory"
    if action.op == ResponseAction.UNDO and action.kind == ActionTarget.LOCK:
        return "a lock can't be undone"
    return ""


def _failed(action: ResponseAction, token: str, error: Exception, message: str) -> Outcome:
    retryable = getattr(error, "retryable", not isinstance(error, MdmError))
    attempts = action.attempts
    if retryable and attempts < MAX_ATTEMPTS:
        delay = backoff(attempts, getattr(error, "retry_after", None))
        ResponseAction.objects.filter(
            pk=action.pk, claim_token=token, state=ResponseAction.CLAIMED
        ).update(
            state=ResponseAction.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            last_error=message[:2000],
            claim_token="",
        )
        log.warning("action retry action=%s attempt=%s in=%.0fs", action.pk, attempts, delay)
        return Outcome("retry", delay, message)

    _finish(action, token, ResponseAction.FAILED, message)
    log.warning("action failed action=%s attempts=%s", action.pk, attempts)
    return Outcome("failed", error=message)


def _finish(action: ResponseAction, token: str, state: str, error: str) -> None:
    with transaction.atomic():
        finished = ResponseAction.objects.filter(
            pk=action.pk, claim_token=token, state=ResponseAction.CLAIMED
        ).update(state=state, last_error=error[:2000], done_at=timezone.now(), claim_token="")
        if finished:
            _audit_outcome(action, state)


def _audit_outcome(action: ResponseAction, state: str) -> None:
    """Every MDM call Bastion made, or gave up on, in the tenant's audit log."""
    AuditEntry.objects.create(
        tenant_id=action.tenant_id,
        actor="system",
        action=f"mdm_action.{action.op}",
        object_type="device",
        object_id=str(action.device_id),
        detail={
            "outcome": state,
            "response_action": action.pk,
            "event": action.event_id,
            "integration": action.integration_id,
            "kind": action.kind,
            "target": action.name,
            "attribute": action.attribute,
            "attempts": action.attempts,
        },
    )


def due_actions(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Actions a sweep should hand to workers: pending and due, or claimed by a worker
    that stopped answering."""
    now = now or timezone.now()
    return list(
        ResponseAction.objects.filter(claimable(now))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def run_due(now: datetime | None = None, rounds: int = 10) -> dict[str, int]:
    """Delivers every due action in this process (the command line and tests use it)."""
    counts: dict[str, int] = {}
    for _ in range(rounds):
        ids = due_actions(now)
        progressed = False
        for action_id in ids:
            outcome = deliver(action_id, now)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            progressed = progressed or outcome.status != "busy"
        if not ids or not progressed:
            break
    return counts
