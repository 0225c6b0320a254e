"""The MDM slow, failing, throttling, answering garbage or revoking the credentials in the
middle of a sync, for both products: no inventory loss, backoff that respects the MDM, the
failure visible on the integration, and no hammering of an MDM that refused us."""

from datetime import timedelta

import httpx
from django.utils import timezone

from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.tasks import enqueue_due_syncs
from tests.conftest import sync
from tests.faults.conftest import DEVICE_PAGES, device_rows, inventory


def test_a_slow_mdm_still_syncs_completely(emulator, synced):
    product, integration = synced
    before = inventory(integration)
    emulator.set_faults([{"kind": "latency", "ms": 150, "product": product}])

    run = sync(integration)

    assert run.status == SyncRun.DONE
    assert inventory(integration) == before


def test_an_mdm_failing_with_5xx_loses_no_device_and_says_so(emulator, synced):
    product, integration = synced
    before = inventory(integration)
    emulator.set_faults(
        [{"kind": "error", "status": 503, "product": product, "path": DEVICE_PAGES[product]}]
    )

    run = sync(integration)

    integration.refresh_from_db()
    assert run.status in (SyncRun.FAILED, SyncRun.PARTIAL)
    assert run.removed == 0
    assert inventory(integration) == before
    assert integration.status == Integration.FAILED
    assert integration.last_error


def test_a_throttling_mdm_is_given_the_time_it_asks_for(emulator, synced):
    product, integration = synced
    emulator.set_faults(
        [
            {
                "kind": "throttle",
                "retry_after": 1,
                "times": 2,
                "product": product,
                "path": DEVICE_PAGES[product],
            }
        ]
    )
    emulator_log = f"{emulator.url}/_emulator"
    httpx.post(f"{emulator_log}/reset-log")

    run = sync(integration)

    entries = httpx.get(f"{emulator_log}/requests?product={product}").json()["entries"]
    assert run.status == SyncRun.DONE
    throttled = [i for i, entry in enumerate(entries) if entry["status"] == 429]
    assert len(throttled) == 2
    for index in throttled:
        gap = (entries[index + 1]["t"] - entries[index]["t"]) / 1000
        assert gap >= 1.0 - 0.05, f"the next call came {gap:.2f}s after a 429 asking for 1s"


def test_garbage_from_the_mdm_loses_no_device(emulator, synced):
    product, integration = synced
    before = inventory(integration)
    emulator.set_faults([{"kind": "malformed", "product": product, "path": DEVICE_PAGES[product]}])

    run = sync(integration)

    integration.refresh_from_db()
    assert run.status in (SyncRun.FAILED, SyncRun.PARTIAL)
    assert inventory(integration) == before
    assert integration.last_error


def test_credentials_revoked_mid_sync_stop_syncing_and_say_so(emulator, synced):
    product, integration = synced
    before = inventory(integration)
    rows_before = device_rows(integration)
    emulator.set_faults([{"kind": "expire_credentials", "after": 3, "product": product}])

    run = sync(integration)

    integration.refresh_from_db()
    assert run.status == SyncRun.FAILED
    assert integration.status == Integration.AUTH_FAILED
    assert "credentials" in integration.last_error
    assert inventory(integration) == before
    assert device_rows(integration) == rows_before


def test_an_integration_with_revoked_credentials_is_not_scheduled_again(emulator, synced):
    product, integration = synced
    emulator.set_faults([{"kind": "expire_credentials", "product": product}])
    sync(integration)
    Integration.objects.filter(pk=integration.pk).update(
        next_sync_at=timezone.now() - timedelta(minutes=1)
    )
    httpx.post(f"{emulator.url}/_emulator/reset-log")

    queued = enqueue_due_syncs()

    assert queued == 0
    assert not SyncRun.objects.filter(integration=integration, status=SyncRun.QUEUED).exists()
    log = httpx.get(f"{emulator.url}/_emulator/requests?product={product}").json()
    assert log["count"] == 0
