"""Devices that share a serial or UDID with an enrolled one, and re-enrolments cut in two by
the batch boundaries of one sync."""

import pytest

from bastion.inventory.models import Device
from tests.conftest import CORE_LABELS, add_integration, sync
from tests.sync.helpers import control


def label_id(handle, name):
    return next(label.id for label in handle.fleet.core.labels if label.name == name)


def uuids_of(handle, name):
    return control(handle, "GET", f"/state/core/labels/{label_id(handle, name)}")["uuids"]


def first_only_in(handle, name, others):
    inside = uuids_of(handle, name)
    outside = set()
    for other in others:
        outside |= set(uuids_of(handle, other))
    by_uuid = {d.uuid: d for d in handle.fleet.core.devices}
    candidates = [u for u in inside if u not in outside and by_uuid[u].status == "ACTIVE"]
    return min(candidates, key=lambda u: by_uuid[u].id)


@pytest.fixture
def big(make_emulator):
    return make_emulator(devices=1500)


@pytest.fixture
def small(make_emulator):
    return make_emulator(devices=60)


def both_enrolled(tenant, handle):
    """A device enrolled twice, both enrolments active: the first in Executives (the first
    label listed), the second only in Engineering (the last)."""
    integration = add_integration(tenant, handle, "core", CORE_LABELS)
    assert sync(integration).status == "done"
    old = first_only_in(handle, "Executives", ["Sales", "Engineering"])
    new = control(handle, "POST", f"/fleet/core/devices/{old}/reenrol", {"oldStatus": "ACTIVE"})
    for name in CORE_LABELS:
        control(handle, "POST", f"/fleet/core/labels/{label_id(handle, name)}/members",
                {"remove": [new["uuid"]]})  # fmt: skip
    control(handle, "POST", f"/fleet/core/labels/{label_id(handle, 'Engineering')}/members",
            {"add": [new["uuid"]]})  # fmt: skip
    return integration, old, new["uuid"]


def test_two_active_enrolments_in_one_batch_are_two_devices(tenant, small):
    integration, old, new = both_enrolled(tenant, small)

    run = sync(integration)

    assert run.status == "done"
    assert Device.objects.get(integration=integration, mdm_id=old).state != Device.REMOVED
    assert Device.objects.filter(integration=integration, mdm_id=new).exists()


def test_two_active_enrolments_in_different_batches_are_two_devices(tenant, big):
    integration, old, new = both_enrolled(tenant, big)
    before = Device.objects.get(integration=integration, mdm_id=old).pk

    run = sync(integration)

    assert run.status == "done"
    kept = set(
        Device.objects.filter(integration=integration, mdm_id__in=[old, new]).values_list(
            "mdm_id", flat=True
        )
    )
    # The code means: "the old id is itself still enrolled: two devices, not one".
    assert kept == {old, new}, (kept, "old row", before)


def test_two_active_enrolments_in_different_batches_are_stable_across_syncs(tenant, big):
    integration, old, new = both_enrolled(tenant, big)

    sync(integration)
    second = sync(integration)
    third = sync(integration)

    assert (second.added, second.updated, second.moved) == (third.added, third.updated, 0)
    assert (third.added, third.updated, third.moved, third.removed) == (0, 0, 0, 0), (
        third.added, third.updated, third.moved, third.removed,
    )  # fmt: skip


def test_a_new_device_sharing_a_serial_does_not_take_over_an_enrolled_one(tenant, small):
    """Two different handsets with the same serial (Android devices that report a bogus
    serial such as "unknown" do): the new one must not take the activated one's record."""
    from bastion.api.models import DeviceCredential

    integration = add_integration(tenant, small, "core", CORE_LABELS)
    assert sync(integration).status == "done"
    selected = set()
    for name in CORE_LABELS:
        selected |= set(uuids_of(small, name))
    by_uuid = {d.uuid: d for d in small.fleet.core.devices}
    enrolled = next(
        d for d in small.fleet.core.devices
        if d.uuid in selected and d.status == "ACTIVE" and d.platform == "Android"
    )  # fmt: skip
    newcomer = next(
        d for d in small.fleet.core.devices
        if d.uuid not in selected and d.status == "ACTIVE" and d.platform == "Android"
    )  # fmt: skip
    record = Device.objects.get(integration=integration, mdm_id=enrolled.uuid)
    record.state = Device.ACTIVE
    record.save(update_fields=["state"])
    _, token = DeviceCredential.issue(record)
    by_uuid[newcomer.uuid].serial = enrolled.serial
    control(small, "POST", f"/fleet/core/labels/{label_id(small, 'Sales')}/members",
            {"add": [newcomer.uuid]})  # fmt: skip

    run = sync(integration)

    record.refresh_from_db()
    assert run.status == "done"
    assert DeviceCredential.authenticate(token).device.mdm_id == enrolled.uuid, (
        "the agent of", enrolled.uuid, "now speaks for", record.mdm_id,
    )  # fmt: skip
    assert Device.objects.filter(integration=integration, mdm_id=newcomer.uuid).exists()
