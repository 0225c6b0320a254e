"""A worker that dies in the middle of a sync or of delivering an action: the next run
completes, no device is duplicated, no action is applied twice or lost.

A dead worker is what it leaves in the database: a running run whose heartbeat stopped, or
an action claimed and never finished. Killing real worker processes is in
test_processes.py (PostgreSQL and Redis only).
"""

from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from bastion.inventory.models import Device
from bastion.mdm.models import SyncRun
from bastion.mdm.services import connector_for
from bastion.mdm.sync import STALE_AFTER, SyncEngine
from bastion.threats import engine
from bastion.threats.models import ResponseAction
from tests.faults.conftest import inventory
from tests.threats.conftest import core_labels, mdm_requests, report, respond, target

QUARANTINE = "MTD-Quarantine"


class WorkerKilled(BaseException):
    """Stands for SIGKILL: no except clause of the engine runs."""


def _sync_until_killed(integration) -> None:
    def die(progress):
        if progress.done:
            raise WorkerKilled

    connector = connector_for(integration, retries=0)
    try:
        with pytest.raises(WorkerKilled):
            SyncEngine(integration, connector, on_progress=die).run()
    finally:
        connector.close()


def _sync(integration) -> SyncRun:
    connector = connector_for(integration, retries=3, backoff=0.05)
    try:
        return SyncEngine(integration, connector).run()
    finally:
        connector.close()


def test_a_sync_killed_midway_blocks_a_second_sync_while_it_may_be_alive(synced):
    _, integration = synced
    _sync_until_killed(integration)

    second = _sync(integration)

    assert second.status == SyncRun.SKIPPED
    assert integration.runs.filter(status=SyncRun.RUNNING).count() == 1


def test_after_a_killed_sync_the_next_run_completes_without_duplicates(synced):
    _, integration = synced
    before = inventory(integration)
    _sync_until_killed(integration)
    # Time passes: the dead run's heartbeat is older than the limit.
    SyncRun.objects.filter(integration=integration, status=SyncRun.RUNNING).update(
        heartbeat_at=timezone.now() - STALE_AFTER - timedelta(seconds=1)
    )

    run = _sync(integration)

    assert run.status == SyncRun.DONE
    dead = integration.runs.exclude(pk=run.pk).order_by("-pk").first()
    assert dead.status == SyncRun.FAILED and dead.error.startswith("abandoned")
    assert inventory(integration) == before
    duplicates = (
        Device.objects.filter(integration=integration)
        .values("mdm_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not duplicates.exists()


def _reported_action(client, synced_core, iris) -> ResponseAction:
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    report(client, iris, "arp_mitm", "ev-1")
    return ResponseAction.objects.get(device=iris)


def _claim_expires(action: ResponseAction) -> None:
    ResponseAction.objects.filter(pk=action.pk).update(
        claimed_at=timezone.now() - engine.claim_timeout() - timedelta(seconds=1)
    )


def test_an_action_claimed_by_a_dead_worker_is_delivered_once(client, emulator, synced_core, iris):
    action = _reported_action(client, synced_core, iris)
    status, _ = engine.claim(action.pk)
    assert status == "claimed"

    while_claimed = engine.due_actions()
    _claim_expires(action)
    counts = engine.run_due()

    action.refresh_from_db()
    assert action.pk not in while_claimed
    assert counts == {"done": 1}
    assert action.state == ResponseAction.DONE and action.attempts == 2
    assert QUARANTINE in core_labels(emulator, iris)
    assert len(mdm_requests(emulator, "PUT", "/add")) == 1


def test_a_worker_dying_after_the_mdm_call_leaves_the_label_applied_once(
    client, emulator, synced_core, iris
):
    action = _reported_action(client, synced_core, iris)
    engine.claim(action.pk)
    # The dead worker's call reached the MDM; its "done" never reached the database.
    connector = connector_for(synced_core)
    try:
        from bastion.mdm.connectors.base import ActionSpec

        connector.apply_action(
            synced_core.space_id, ActionSpec(kind="label", name=QUARANTINE), iris.mdm_id
        )
    finally:
        connector.close()
    _claim_expires(action)

    engine.run_due()

    action.refresh_from_db()
    assert action.state == ResponseAction.DONE
    labels = core_labels(emulator, iris)
    assert QUARANTINE in labels
    assert ResponseAction.objects.filter(device=iris, op=ResponseAction.APPLY).count() == 1
