"""What a sync does when the MDM changed since the last one."""

from bastion.api.models import DeviceCredential
from bastion.inventory.models import ConsoleGroup, Device
from tests.conftest import sync
from tests.sync.helpers import control


def label_id(handle, name: str) -> int:
    return next(label.id for label in handle.fleet.core.labels if label.name == name)


def only_in(handle, name: str, others: list[str]) -> str:
    inside = set(control(handle, "GET", f"/state/core/labels/{label_id(handle, name)}")["uuids"])
    for other in others:
        inside -= set(
            control(handle, "GET", f"/state/core/labels/{label_id(handle, other)}")["uuids"]
        )
    return sorted(inside)[0]


def test_a_device_that_left_every_selected_label_is_tombstoned(emulator, synced_core):
    uuid = only_in(emulator, "Sales", ["Executives", "Engineering"])
    device = Device.objects.get(mdm_id=uuid)
    _, token = DeviceCredential.issue(device)
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members",
            {"remove": [uuid]})  # fmt: skip

    run = sync(synced_core)

    device.refresh_from_db()
    assert run.removed == 1
    assert device.state == Device.REMOVED
    assert DeviceCredential.authenticate(token) is None


def test_a_removed_device_that_returns_gets_its_old_record_back(emulator, synced_core):
    uuid = only_in(emulator, "Sales", ["Executives", "Engineering"])
    path = f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members"
    control(emulator, "POST", path, {"remove": [uuid]})
    sync(synced_core)
    control(emulator, "POST", path, {"add": [uuid]})

    run = sync(synced_core)

    assert Device.objects.filter(mdm_id=uuid).count() == 1
    assert Device.objects.get(mdm_id=uuid).state == Device.WAITING
    assert run.added == 1


def test_a_retired_device_is_no_longer_managed(emulator, synced_core):
    uuid = only_in(emulator, "Sales", ["Executives", "Engineering"])
    control(emulator, "POST", f"/fleet/core/devices/{uuid}", {"status": "RETIRED"})

    run = sync(synced_core)

    assert Device.objects.get(mdm_id=uuid).state == Device.REMOVED
    assert any("RETIRED" in message for message in run.messages)


def test_a_device_moved_between_labels_moves_between_groups(emulator, synced_core):
    uuid = only_in(emulator, "Sales", ["Executives", "Engineering"])
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Executives')}/members",
            {"add": [uuid]})  # fmt: skip

    run = sync(synced_core)

    assert run.moved == 1
    assert Device.objects.get(mdm_id=uuid).group.mdm_group_name == "Executives"


def test_a_renamed_label_keeps_its_console_group(emulator, synced_core):
    group = ConsoleGroup.objects.get(integration=synced_core, mdm_group_name="Sales")
    devices = group.devices.count()
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Sales')}/rename",
            {"name": "Sales & Marketing"})  # fmt: skip

    sync(synced_core)

    group.refresh_from_db()
    assert group.name == "Core EU / Sales & Marketing"
    assert group.devices.count() == devices


def test_a_reenrolled_device_replaces_its_old_record(emulator, synced_core):
    uuid = only_in(emulator, "Sales", ["Executives", "Engineering"])
    old = Device.objects.get(mdm_id=uuid)
    new = control(emulator, "POST", f"/fleet/core/devices/{uuid}/reenrol", {})
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members",
            {"add": [new["uuid"]]})  # fmt: skip

    run = sync(synced_core)

    old.refresh_from_db()
    assert old.mdm_id == new["uuid"]
    assert old.state == Device.WAITING
    assert not Device.objects.filter(mdm_id=uuid).exists()
    assert run.removed == 0


def test_a_device_that_activated_into_the_default_group_is_not_removed(tenant, synced_core):
    default = ConsoleGroup.default_for(tenant)
    loner = Device.objects.create(
        tenant=tenant, group=default, mdm_id="42", platform=Device.IOS, state=Device.ACTIVE
    )

    sync(synced_core)

    loner.refresh_from_db()
    assert loner.state == Device.ACTIVE


def test_apps_are_fetched_only_for_new_devices_or_devices_that_checked_in(emulator, synced_core):
    control(emulator, "POST", "/reset-log", {})
    sync(synced_core)
    untouched = control(emulator, "GET", "/requests")

    uuid = only_in(emulator, "Sales", ["Executives", "Engineering"])
    control(emulator, "POST", f"/fleet/core/devices/{uuid}",
            {"lastConnectedAt": 4102444800000})  # fmt: skip
    control(emulator, "POST", "/reset-log", {})
    sync(synced_core)
    after_checkin = control(emulator, "GET", "/requests")

    def inventory_calls(log):
        return [e for e in log["entries"] if "appinventory" in e["path"]]

    assert inventory_calls(untouched) == []
    calls = inventory_calls(after_checkin)
    assert len(calls) == 1
    assert uuid in calls[0]["path"] or uuid in calls[0].get("query", "")
