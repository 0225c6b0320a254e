"""Prometheus metrics: MDM calls, syncs, actions and events, and who may scrape."""

from bastion.threats import engine
from tests.conftest import sync
from tests.ops.conftest import total, value
from tests.threats.conftest import report, respond, target


def test_mdm_calls_are_counted_by_product_and_status(scrape, core_integration):
    before = scrape()

    sync(core_integration)

    after = scrape()
    ok_calls = total(after, "bastion_mdm_requests_total", mdm="core", status="200")
    assert ok_calls > total(before, "bastion_mdm_requests_total", mdm="core", status="200")
    devices_page = total(
        after, "bastion_mdm_request_seconds_count", mdm="core", path="/api/v2/devices"
    )
    assert devices_page >= 1


def test_a_finished_sync_shows_its_run_duration_and_devices(scrape, core_integration):
    run = sync(core_integration)

    samples = scrape()

    key = str(core_integration.pk)
    assert value(samples, "bastion_sync_runs_total", trigger="manual", status="done") == 1
    assert value(samples, "bastion_sync_last_devices_seen", integration=key) == run.seen
    assert value(samples, "bastion_integration_status", integration=key, status="ok") == 1
    assert total(samples, "bastion_sync_seconds_count", status="done") >= 1


def test_pending_actions_and_accepted_events_are_counted(client, scrape, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, "MTD-Quarantine").pk)

    before = scrape()
    report(client, iris, "arp_mitm", "ev-1")
    pending = scrape()
    engine.run_due()
    delivered = scrape()

    events = "bastion_threat_events_total"
    assert value(pending, events) == value(before, events) + 1
    assert value(pending, "bastion_actions", state="pending") == 1
    assert value(pending, "bastion_actions_oldest_age_seconds", state="pending") >= 0
    assert value(delivered, "bastion_actions", state="pending") == 0
    assert value(delivered, "bastion_actions", state="done") == 1


def test_metrics_carry_no_names(client, scrape, synced_core):
    text = client.get("/metrics").content.decode()

    assert synced_core.name not in text
    assert synced_core.tenant.name not in text


def test_without_a_token_only_this_machine_may_scrape(client, db):
    answer = client.get("/metrics", REMOTE_ADDR="10.1.2.3")

    assert answer.status_code == 403


def test_with_a_token_a_scraper_must_send_it(client, db, settings):
    settings.BASTION_METRICS_TOKEN = "s3cret-metrics-token"

    refused = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    allowed = client.get(
        "/metrics",
        REMOTE_ADDR="10.1.2.3",
        headers={"Authorization": "Bearer s3cret-metrics-token"},
    )

    assert refused.status_code == 403 and wrong.status_code == 403
    assert allowed.status_code == 200
    assert b"bastion_threat_events_total" in allowed.content
