"""MobileIron Core: labels applied and removed through the emulator over HTTP."""

from datetime import timedelta

import httpx
from django.utils import timezone

from bastion.threats import engine
from bastion.threats.models import ResponseAction, ThreatEvent
from bastion.threats.tasks import sweep_pending_actions
from tests.conftest import sync
from tests.threats.conftest import (
    core_labels,
    deliver_all,
    mdm_requests,
    mitigate,
    report,
    respond,
    target,
)

QUARANTINE = "MTD-Quarantine"


def test_a_threat_applies_the_rows_label_in_core(client, emulator, synced_core, iris):
    quarantine = target(synced_core, QUARANTINE)
    respond(iris.group, "arp_mitm", mdm_action=quarantine.pk, mitigation="remove")

    answer = report(client, iris, "arp_mitm", "ev-1")
    deliver_all()

    assert answer.status_code == 200
    assert QUARANTINE in core_labels(emulator, iris)
    action = ResponseAction.objects.get(event__agent_event_id="ev-1")
    assert action.state == ResponseAction.DONE and action.attempts == 1


def test_mitigation_removes_the_label(client, emulator, synced_core, iris):
    respond(
        iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk, mitigation="remove"
    )
    report(client, iris, "arp_mitm", "ev-1")
    deliver_all()

    answer = mitigate(client, iris, "ev-1")
    deliver_all()

    assert answer.status_code == 200 and answer.json()["state"] == "mitigated"
    assert QUARANTINE not in core_labels(emulator, iris)
    assert len(mdm_requests(emulator, "PUT", "/remove")) == 1


def test_mitigation_without_remove_leaves_the_label(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    report(client, iris, "arp_mitm", "ev-1")
    deliver_all()

    mitigate(client, iris, "ev-1")
    deliver_all()

    assert QUARANTINE in core_labels(emulator, iris)


def test_two_threats_sharing_a_label_keep_it_until_both_are_mitigated(
    client, emulator, synced_core, iris
):
    quarantine = target(synced_core, QUARANTINE).pk
    respond(iris.group, "arp_mitm", mdm_action=quarantine, mitigation="remove")
    respond(iris.group, "ssl_strip", mdm_action=quarantine, mitigation="remove")
    report(client, iris, "arp_mitm", "ev-1")
    report(client, iris, "ssl_strip", "ev-2")
    deliver_all()

    mitigate(client, iris, "ev-1")
    deliver_all()
    kept = core_labels(emulator, iris)
    mitigate(client, iris, "ev-2")
    deliver_all()

    assert QUARANTINE in kept
    assert QUARANTINE not in core_labels(emulator, iris)


def test_a_mitigation_before_delivery_cancels_the_apply(client, emulator, synced_core, iris):
    respond(
        iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk, mitigation="remove"
    )
    report(client, iris, "arp_mitm", "ev-1")

    mitigate(client, iris, "ev-1")
    deliver_all()

    action = ResponseAction.objects.get(event__agent_event_id="ev-1")
    assert action.state == ResponseAction.CANCELLED
    assert mdm_requests(emulator, "PUT", "/labels/") == []
    assert QUARANTINE not in core_labels(emulator, iris)


def test_a_mitigation_while_the_apply_is_in_flight_undoes_after_it(
    client, emulator, synced_core, iris
):
    respond(
        iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk, mitigation="remove"
    )
    report(client, iris, "arp_mitm", "ev-1")
    apply = ResponseAction.objects.get(event__agent_event_id="ev-1")
    status, _ = engine.claim(apply.pk)

    mitigate(client, iris, "ev-1")
    undo = ResponseAction.objects.get(op=ResponseAction.UNDO)
    waited = engine.deliver(undo.pk)

    assert status == "claimed"
    assert waited.status == "busy"


def test_a_mitigation_that_arrives_before_its_report_is_kept(client, emulator, synced_core, iris):
    respond(
        iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk, mitigation="remove"
    )

    early = mitigate(client, iris, "ev-9", threat_id="arp_mitm")
    late = report(client, iris, "arp_mitm", "ev-9")
    deliver_all()

    assert early.status_code == 200 and late.json()["state"] == "mitigated"
    assert not ResponseAction.objects.exists()
    assert QUARANTINE not in core_labels(emulator, iris)


def test_an_unmitigable_threat_keeps_its_label(client, emulator, synced_core, iris):
    respond(iris.group, "system_tampering", mdm_action=target(synced_core, QUARANTINE).pk)
    report(client, iris, "system_tampering", "ev-1")
    deliver_all()

    mitigate(client, iris, "ev-1")
    deliver_all()

    assert QUARANTINE in core_labels(emulator, iris)
    assert not ResponseAction.objects.filter(op=ResponseAction.UNDO).exists()


def test_a_transient_mdm_error_is_retried_with_backoff(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    emulator.set_faults([{"kind": "error", "status": 503, "path": "/labels/", "times": 1}])
    report(client, iris, "arp_mitm", "ev-1")

    first = deliver_all()
    action = ResponseAction.objects.get()
    waiting = action.state, action.next_attempt_at > timezone.now(), action.last_error
    second = engine.run_due(now=timezone.now() + timedelta(hours=1))

    assert first == {"retry": 1}
    assert waiting[0] == ResponseAction.PENDING and waiting[1] and "Transient" in waiting[2]
    assert second == {"done": 1}
    assert QUARANTINE in core_labels(emulator, iris)


def test_a_throttled_call_waits_at_least_retry_after(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    emulator.set_faults([{"kind": "throttle", "retry_after": 120, "path": "/labels/", "times": 1}])
    report(client, iris, "arp_mitm", "ev-1")

    outcome = engine.deliver(ResponseAction.objects.get().pk)

    assert outcome.status == "retry" and outcome.retry_in >= 120


def test_after_the_last_try_the_action_fails_and_an_admin_can_retry_it(
    client, emulator, synced_core, iris
):
    from bastion.threats.services import retry_action

    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    emulator.set_faults([{"kind": "error", "status": 500, "path": "/labels/"}])
    report(client, iris, "arp_mitm", "ev-1")
    later = timezone.now()
    for _ in range(engine.MAX_ATTEMPTS):
        later += timedelta(hours=2)
        engine.run_due(now=later)
    failed = ResponseAction.objects.get()

    emulator.clear_faults()
    retried = retry_action(failed)
    deliver_all()

    assert failed.state == ResponseAction.FAILED and failed.attempts == engine.MAX_ATTEMPTS
    assert "500" in failed.last_error or "Transient" in failed.last_error
    assert retried
    assert QUARANTINE in core_labels(emulator, iris)


def test_a_stale_claim_is_redelivered_by_the_sweep_once(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    report(client, iris, "arp_mitm", "ev-1")
    action = ResponseAction.objects.get()
    # A worker claimed it, then died before calling the MDM.
    ResponseAction.objects.filter(pk=action.pk).update(
        state=ResponseAction.CLAIMED,
        claim_token="dead",
        claimed_at=timezone.now() - timedelta(hours=1),
        attempts=1,
    )

    due = engine.due_actions()
    summary = sweep_pending_actions()
    results = [engine.deliver(action.pk), engine.deliver(action.pk)]

    assert due == [action.pk] and summary["actions"] == 1
    assert [r.status for r in results] == ["done", "skipped"]
    assert len(mdm_requests(emulator, "PUT", "/add")) == 1
    assert QUARANTINE in core_labels(emulator, iris)


def test_a_fresh_claim_is_left_to_its_worker(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    report(client, iris, "arp_mitm", "ev-1")
    action = ResponseAction.objects.get()
    engine.claim(action.pk)

    assert engine.due_actions() == []
    assert engine.deliver(action.pk).status == "skipped"


def test_a_label_deleted_in_the_mdm_fails_visibly(client, emulator, synced_core, iris):
    quarantine = target(synced_core, QUARANTINE)
    respond(iris.group, "arp_mitm", mdm_action=quarantine.pk)
    httpx.post(f"{emulator.url}/_emulator/fleet/core/labels/{quarantine.mdm_group_id}/delete")
    report(client, iris, "arp_mitm", "ev-1")

    deliver_all()
    sync(synced_core)
    quarantine.refresh_from_db()

    action = ResponseAction.objects.get()
    assert action.state == ResponseAction.FAILED and action.last_error
    assert not quarantine.usable and quarantine.blocker


def test_handled_on_device_calls_no_mdm_api_for_the_built_in_agent(
    client, emulator, synced_core, iris
):
    respond(iris.group, "arp_mitm", mdm_action="on_device")
    iris.agent_kind = "mdm_builtin"
    iris.save(update_fields=["agent_kind"])

    answer = report(client, iris, "arp_mitm", "ev-1")
    deliver_all()

    assert answer.json()["handled_on_device"] is True
    assert not ResponseAction.objects.exists()
    assert mdm_requests(emulator, "PUT", "/labels/") == []


def test_a_disabled_threat_is_recorded_and_not_answered(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", enabled=False, mdm_action=target(synced_core, QUARANTINE).pk)

    report(client, iris, "arp_mitm", "ev-1")

    event = ThreatEvent.objects.get()
    assert event.ignored and not ResponseAction.objects.exists()
