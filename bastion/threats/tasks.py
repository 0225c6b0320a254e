"""Thin Celery tasks over the stored outbox: load ids, call the engine, return a summary."""

from celery import shared_task

from bastion.threats import engine, notify, ratelimit
from bastion.threats.models import AdminNotice

SWEEP_LIMIT = 500


@shared_task(name="bastion.threats.tasks.deliver_action")
def deliver_action(action_id: int) -> dict:
    outcome = engine.deliver(action_id)
    if outcome.retry_in is not None:
        deliver_action.apply_async((action_id,), countdown=outcome.retry_in)
    return {"action": action_id, "status": outcome.status}


@shared_task(name="bastion.threats.tasks.send_notice")
def send_notice(notice_id: int) -> dict:
    return {"notice": notice_id, "status": notify.send_notice(notice_id)}


@shared_task(name="bastion.threats.tasks.sweep_pending_actions")
def sweep_pending_actions() -> dict:
    """Re-sends actions left pending or claimed by a dead worker, and unsent notices, so a
    lost broker message loses nothing; a repeat finds its row taken and does nothing."""
    actions = engine.due_actions(limit=SWEEP_LIMIT)
    for action_id in actions:
        deliver_action.delay(action_id)

    notices = list(
        AdminNotice.objects.filter(state=AdminNotice.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    for notice_id in notices:
        send_notice.delay(notice_id)
    return {"actions": len(actions), "notices": len(notices)}


@shared_task(name="bastion.threats.tasks.prune_rate_windows")
def prune_rate_windows() -> dict:
    return {"deleted": ratelimit.prune()}
