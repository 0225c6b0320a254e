"""Thin Celery tasks: load ids, call the engine, return a summary."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from bastion.mdm.models import Integration, SyncRun

log = logging.getLogger(__name__)


@shared_task(name="bastion.mdm.tasks.sync_integration")
def sync_integration(run_id: int) -> dict:
    from bastion.mdm.services import connector_for
    from bastion.mdm.sync import SyncEngine

    run = SyncRun.objects.select_related("integration__tenant").filter(pk=run_id).first()
    if run is None or run.status != SyncRun.QUEUED:
        # Gone, or already taken by another delivery of the same message: nothing to do.
        return {"run": run_id, "status": "ignored"}

    connector = connector_for(run.integration)
    try:
        run = SyncEngine(run.integration, connector).run(run.trigger, run=run)
    finally:
        connector.close()
    return {"run": run.pk, "status": run.status, **run.counts()}


def enqueue_sync(integration: Integration, trigger: str) -> SyncRun:
    """Stores a queued run, then hands its id to a worker.

    A broker that is down loses nothing and fails nothing: the run waits queued, and the
    scheduler sends runs queued longer than REQUEUE_AFTER again."""
    run = SyncRun.objects.create(integration=integration, trigger=trigger)
    Integration.objects.filter(pk=integration.pk).exclude(status=Integration.SYNCING).update(
        status=Integration.QUEUED
    )
    try:
        sync_integration.delay(run.pk)
    except Exception:  # noqa: BLE001 - any broker failure is recovered by the scheduler
        log.warning("sync not enqueued run=%s; the scheduler will send it again", run.pk)
    return run


@shared_task(name="bastion.mdm.tasks.enqueue_due_syncs")
def enqueue_due_syncs() -> int:
    """The scheduler's tick: one run per due integration, then a sweep of lost work.

    Claiming an integration's slot is a compare-and-set on `next_sync_at`, so two
    schedulers started by mistake still enqueue one run. A run that falls due while
    another runs is recorded as skipped. An integration whose credentials were rejected
    waits for an administrator instead of hammering the MDM.
    """
    now = timezone.now()
    due = Integration.objects.filter(next_sync_at__lte=now).exclude(status=Integration.AUTH_FAILED)
    count = 0
    for integration in due.only("pk", "next_sync_at", "sync_interval_minutes"):
        next_at = now + timedelta(minutes=integration.sync_interval_minutes)
        won = Integration.objects.filter(
            pk=integration.pk, next_sync_at=integration.next_sync_at
        ).update(next_sync_at=next_at)
        if not won:
            continue

        busy = SyncRun.objects.filter(
            integration_id=integration.pk, status__in=[SyncRun.RUNNING, SyncRun.QUEUED]
        ).exists()
        if busy:
            SyncRun.objects.create(
                integration_id=integration.pk,
                trigger=SyncRun.SCHEDULED,
                status=SyncRun.SKIPPED,
                finished_at=now,
                error="skipped: the previous sync was still queued or running",
            )
            continue
        enqueue_sync(integration, SyncRun.SCHEDULED)
        count += 1

    requeue_lost_runs(now)
    return count


def requeue_lost_runs(now) -> int:
    """Queued runs whose broker message may be lost are sent again; a repeat is harmless."""
    stale = SyncRun.objects.filter(status=SyncRun.QUEUED, created_at__lt=now - REQUEUE_AFTER)
    ids = list(stale.values_list("pk", flat=True)[:100])
    for run_id in ids:
        sync_integration.delay(run_id)
    return len(ids)


REQUEUE_AFTER = timedelta(minutes=5)
