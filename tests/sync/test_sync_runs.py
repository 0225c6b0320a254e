"""One sync per integration at a time, the schedule, and what a run records."""

from datetime import timedelta

from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from bastion.mdm import tasks
from bastion.mdm.models import ActionTarget, Integration, SyncRun
from bastion.mdm.sync import claim_run
from tests.conftest import sync


def test_a_second_sync_of_the_same_integration_is_skipped_while_one_runs(core_integration):
    first, owned = claim_run(core_integration, SyncRun.MANUAL)

    second = sync(core_integration)

    assert owned and first.status == SyncRun.RUNNING
    assert second.status == SyncRun.SKIPPED
    assert "another sync" in second.error


def test_a_run_left_behind_by_a_dead_worker_is_marked_abandoned(core_integration):
    stale, _ = claim_run(core_integration, SyncRun.MANUAL)
    SyncRun.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    fresh = sync(core_integration)

    stale.refresh_from_db()
    assert stale.status == SyncRun.FAILED
    assert "abandoned" in stale.error
    assert fresh.status == SyncRun.DONE


def test_a_queued_run_delivered_twice_runs_once(core_integration):
    run = SyncRun.objects.create(integration=core_integration, trigger=SyncRun.MANUAL)

    first = tasks.sync_integration(run.pk)
    second = tasks.sync_integration(run.pk)

    assert first["status"] == SyncRun.DONE
    assert second["status"] == "ignored"
    assert SyncRun.objects.filter(integration=core_integration).count() == 1


def test_the_scheduler_enqueues_only_due_integrations_once(core_integration, cloud_integration):
    Integration.objects.filter(pk=cloud_integration.pk).update(
        next_sync_at=timezone.now() + timedelta(hours=1)
    )

    first_tick = tasks.enqueue_due_syncs()
    second_tick = tasks.enqueue_due_syncs()

    assert (first_tick, second_tick) == (1, 0)
    assert SyncRun.objects.filter(integration=core_integration, trigger="scheduled").count() == 1
    assert not SyncRun.objects.filter(integration=cloud_integration).exists()


def test_a_sync_that_falls_due_while_one_runs_is_recorded_as_skipped(core_integration):
    claim_run(core_integration, SyncRun.MANUAL)

    tasks.enqueue_due_syncs()

    skipped = SyncRun.objects.get(integration=core_integration, trigger=SyncRun.SCHEDULED)
    assert skipped.status == SyncRun.SKIPPED


def test_an_integration_with_rejected_credentials_is_not_scheduled(core_integration):
    Integration.objects.filter(pk=core_integration.pk).update(status=Integration.AUTH_FAILED)

    assert tasks.enqueue_due_syncs() == 0


def test_queued_runs_whose_message_was_lost_are_sent_again(core_integration):
    lost = SyncRun.objects.create(
        integration=core_integration,
        trigger=SyncRun.MANUAL,
        created_at=timezone.now() - timedelta(minutes=30),
    )

    resent = tasks.requeue_lost_runs(timezone.now())

    assert resent == 1
    tasks.sync_integration(lost.pk)
    lost.refresh_from_db()
    assert lost.status == SyncRun.DONE


def test_a_sync_asked_for_while_the_broker_is_down_waits_queued(core_integration, monkeypatch):
    def broker_down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.sync_integration, "delay", broker_down)
    run = tasks.enqueue_sync(core_integration, SyncRun.MANUAL)

    sent = []
    monkeypatch.setattr(tasks.sync_integration, "delay", sent.append)
    assert tasks.requeue_lost_runs(timezone.now()) == 0
    assert tasks.requeue_lost_runs(timezone.now() + tasks.REQUEUE_AFTER * 2) == 1
    assert sent == [run.pk]
    run.refresh_from_db()
    assert run.status == SyncRun.QUEUED


def test_a_run_records_its_counts_duration_and_progress(synced_core):
    run = synced_core.runs.get()

    assert run.trigger == SyncRun.MANUAL
    assert run.seen == run.added > 0
    assert run.progress_done == run.seen
    assert run.progress_total >= run.progress_done
    assert run.duration.total_seconds() >= 0
    synced_core.refresh_from_db()
    assert synced_core.status == Integration.OK
    assert synced_core.last_success_at is not None
    assert synced_core.next_sync_at > timezone.now() + timedelta(hours=3)


def test_core_labels_become_targets_only_when_static_and_not_selected(synced_core):
    targets = {t.name: t for t in synced_core.action_targets.all()}

    assert targets["MTD-Quarantine"].usable
    assert targets["MTD High Risk"].usable
    assert "selected" in targets["Sales"].blocker
    assert targets["iOS"].blocker
    assert targets["All-Smartphones"].blocker


def test_cloud_groups_become_targets_only_when_they_match_an_attribute(synced_cloud):
    targets = {t.name: t for t in synced_cloud.action_targets.all()}

    assert targets["MTD Threat Detected"].usable
    assert targets["MTD Threat Detected"].attribute == "MTDThreat"
    assert targets["Android Devices"].blocker
    assert targets["Lock"].kind == ActionTarget.LOCK and targets["Lock"].usable
    assert targets["Sales Team"].blocker
