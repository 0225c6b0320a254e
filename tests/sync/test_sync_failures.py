"""A sync that could not fetch everything removes nothing, and says why."""

import pytest

from bastion.inventory.models import Device
from bastion.mdm.models import Integration
from tests.conftest import sync
from tests.sync.helpers import control


@pytest.fixture
def emulator(make_emulator):
    # Large enough that each selected label spans several pages of 200 devices.
    return make_emulator(devices=1200)


def drop_one_device(handle, integration) -> Device:
    """Takes one synced Core device out of its only selected label, in the MDM."""
    for label in handle.fleet.core.labels:
        if label.name != "Engineering":
            continue
        uuids = control(handle, "GET", f"/state/core/labels/{label.id}")["uuids"]
        for uuid in uuids:
            device = Device.objects.filter(integration=integration, mdm_id=uuid).first()
            if device and device.group.mdm_group_name == "Engineering":
                control(handle, "POST", f"/fleet/core/labels/{label.id}/members",
                        {"remove": [uuid]})  # fmt: skip
                return device
    raise AssertionError("no Engineering-only device in the fleet")


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "repeat_page", "product": "core", "path": "/api/v2/devices"},
        {"kind": "empty_page", "product": "core", "path": "/api/v2/devices"},
        {"kind": "error", "product": "core", "path": "/api/v2/devices", "after": 2},
        {"kind": "malformed", "product": "core", "path": "/api/v2/devices", "after": 1},
    ],
    ids=["page-repeats", "empty-page-while-more", "5xx-mid-sync", "garbage-json"],
)
def test_an_incomplete_fetch_removes_nothing(emulator, synced_core, fault):
    gone = drop_one_device(emulator, synced_core)
    control(emulator, "POST", "/faults", {"faults": [fault]})

    run = sync(synced_core)

    gone.refresh_from_db()
    synced_core.refresh_from_db()
    assert run.status in ("partial", "failed")
    assert run.removed == 0
    assert gone.state == Device.WAITING
    assert "nothing was removed" in run.error or run.status == "failed"
    assert synced_core.status == Integration.FAILED
    assert synced_core.last_error


def test_credentials_revoked_mid_sync_stop_the_sync_and_say_so(emulator, synced_core):
    before = Device.objects.filter(integration=synced_core).exclude(state="removed").count()
    control(emulator, "POST", "/faults", {"faults": [{"kind": "expire_credentials", "after": 3}]})

    run = sync(synced_core)

    synced_core.refresh_from_db()
    assert run.status == "failed"
    assert synced_core.status == Integration.AUTH_FAILED
    assert "credentials rejected" in synced_core.last_error
    assert Device.objects.filter(integration=synced_core).exclude(state="removed").count() == before


def test_a_selected_label_deleted_in_the_mdm_removes_nothing(emulator, synced_core):
    gone = drop_one_device(emulator, synced_core)
    sales = next(label.id for label in emulator.fleet.core.labels if label.name == "Sales")
    control(emulator, "POST", f"/fleet/core/labels/{sales}/delete", {})

    run = sync(synced_core)

    gone.refresh_from_db()
    assert run.status == "partial"
    assert "Sales" in run.error
    assert gone.state == Device.WAITING


def test_unusable_records_are_skipped_with_their_reason(emulator, core_integration):
    devices = [d for d in emulator.fleet.core.devices if d.status == "ACTIVE"]
    devices[0].model = "x" * 10_000
    devices[1].platform = "BlackBerry"
    devices[2].model = "bad \udcff bytes"
    for device in devices[:3]:
        emulator.core.refresh_device(device)

    run = sync(core_integration)

    assert run.status == "done", run.error
    reasons = " ".join(run.messages)
    in_selected = Device.objects.filter(mdm_id__in=[d.uuid for d in devices[:3]])
    assert not in_selected.exists()
    assert run.skipped >= 1
    assert "model" in reasons or "platform" in reasons


def test_the_mdm_answering_slowly_and_throttling_still_completes(emulator, synced_core):
    control(emulator, "POST", "/faults", {"faults": [
        {"kind": "throttle", "retry_after": 1, "times": 2, "path": "/api/v2/devices"},
        {"kind": "latency", "ms": 20},
    ]})  # fmt: skip

    run = sync(synced_core)

    assert run.status == "done", run.error
    throttled = [e for e in control(emulator, "GET", "/requests")["entries"] if e["status"] == 429]
    assert len(throttled) == 2
