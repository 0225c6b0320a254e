"""Thin Celery tasks: load ids, call the engine, return a summary."""

import logging
import time
from datetime import timedelta

import psycopg
from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError, connection
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
    except LOST_CONNECTION as error:
        log.warning("sync lost the database run=%s: %s", run_id, _first_line(error))
        return {"run": run_id, "status": end_run_after_lost_database(run_id, error)}
    finally:
        connector.close()
    return {"run": run.pk, "status": run.status, **run.counts()}


# What a broken database connection raises: Django's errors, and the driver's own where the
# sync uses its cursor directly (COPY).
LOST_CONNECTION = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
# How long a sync that lost its database waits for it to answer again to record the end.
LOST_DATABASE_WAIT_SECONDS = 60


def end_run_after_lost_database(run_id: int, error: Exception) -> str:
    """Records as failed a run whose database connection broke mid-sync (a restarted or
    failed-over server); returns the run's status, "unknown" if the database stayed away.

    The engine records a failed run itself, but through the connection that broke, so the
    run would stay "running" and block every sync of the integration until its heartbeat is
    ten minutes old. This waits for the database on a new connection instead. What the run
    committed before the loss stays; the next sync completes the inventory.
    """
    message = (
        f"the database connection was lost during the sync ({_first_line(error)}); "
        "what was written before stays, and the next sync completes the inventory"
    )
    deadline = time.monotonic() + LOST_DATABASE_WAIT_SECONDS
    while True:
        try:
            connection.close()
        except DatabaseError:
            pass
        try:
            return _record_lost_database(run_id, message)
        except LOST_CONNECTION:
            if time.monotonic() > deadline:
                log.error("sync run=%s stays running: the database did not come back", run_id)
                return "unknown"
            time.sleep(1)


def _record_lost_database(run_id: int, message: str) -> str:
    from bastion.ops.metrics import sync_finished

    now = timezone.now()
    run = SyncRun.objects.select_related("integration").filter(pk=run_id).first()
    ended = SyncRun.objects.filter(pk=run_id, status=SyncRun.RUNNING).update(
        status=SyncRun.FAILED, finished_at=now, heartbeat_at=now, error=message
    )
    if run is None or not ended:
        # The engine recorded the end itself: the connection had survived the error.
        return run.status if run is not None else "gone"

    integration = run.integration
    integration.status = Integration.FAILED
    integration.last_error = message
    integration.last_sync_at = now
    integration.next_sync_at = now + timedelta(minutes=integration.sync_interval_minutes)
    integration.save(update_fields=["status", "last_error", "last_sync_at", "next_sync_at"])
    if run.started_at:
        sync_finished(SyncRun.FAILED, (now - run.started_at).total_seconds())
    return SyncRun.FAILED


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


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
