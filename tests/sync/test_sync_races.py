"""Users that change, inventories that fail mid-sync, duplicate apps, and an ad-hoc sync of
one device while a full sync runs."""

import dataclasses

import pytest

from bastion.inventory.models import Device, DeviceApp, DeviceProfile, DeviceUser
from bastion.mdm.services import connector_for
from bastion.mdm.sync import SyncEngine, sync_one_device
from bastion.mdm.writer import BatchWriter
from tests.conftest import CORE_LABELS, add_integration, sync
from tests.sync.helpers import control


@pytest.fixture
def emulator(make_emulator):
    # Several batches of 500 devices and several pages of 200.
    return make_emulator(devices=1500)


def label_id(handle, name):
    return next(label.id for label in handle.fleet.core.labels if label.name == name)


def uuids_of(handle, name):
    return control(handle, "GET", f"/state/core/labels/{label_id(handle, name)}")["uuids"]


def fleet_apps(handle, uuid) -> set[str]:
    device = next(d for d in handle.fleet.core.devices if d.uuid == uuid)
    return {handle.fleet.apps[i].identifier for i in device.apps}


def fleet_profiles(handle, uuid) -> set[str]:
    device = next(d for d in handle.fleet.core.devices if d.uuid == uuid)
    return {handle.fleet.profiles[i].identifier for i in device.profiles}


def stored_apps(device) -> set[str]:
    return set(DeviceApp.objects.filter(device=device).values_list("app__identifier", flat=True))


def stored_profiles(device) -> set[str]:
    return set(
        DeviceProfile.objects.filter(device=device).values_list("profile__identifier", flat=True)
    )


def sync_with_hook(integration, hook):
    """A full sync that calls hook() once its first page of devices was listed (in the
    prefetch thread: the hook must not touch the database)."""
    connector = connector_for(integration, retries=3, backoff=0.05)
    pages = connector.iter_devices

    def iter_devices(space, groups):
        for number, page in enumerate(pages(space, groups)):
            yield page
            if number == 0:
                hook()

    connector.iter_devices = iter_devices
    try:
        return SyncEngine(integration, connector).run()
    finally:
        connector.close()


def sync_after_index(integration, hook):
    """A full sync that calls hook() right after it read its index of devices, before the
    first page: what another worker may do at that moment."""
    original = BatchWriter.index

    def index(writer):
        original(writer)
        hook()

    BatchWriter.index = index
    try:
        return sync(integration)
    finally:
        BatchWriter.index = original


def test_every_device_has_its_apps_after_a_failure_mid_sync_and_a_clean_sync(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    emulator.set_faults(
        [{"kind": "error", "status": 500, "product": "core", "path": "appinventory", "after": 5}]
    )

    first = sync(integration)
    emulator.clear_faults()
    second = sync(integration)

    assert first.status == "done", first.error
    assert any("apps" in m for m in first.messages), first.messages
    assert second.status == "done"
    wrong = [
        d.mdm_id
        for d in Device.objects.filter(integration=integration)
        if stored_apps(d) != fleet_apps(emulator, d.mdm_id)
    ]
    assert wrong == [], f"{len(wrong)} devices with wrong apps"


def test_every_ios_device_has_its_profiles_after_a_failure_mid_sync(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    emulator.set_faults(
        [{"kind": "error", "status": 503, "product": "core", "path": "/cps/", "after": 3}]
    )

    sync(integration)
    emulator.clear_faults()
    # Profiles are fetched with the apps: check in every device so they are due again.
    for device in emulator.fleet.core.devices:
        device.last_seen = (device.last_seen or 0) + 60_000
    sync(integration)

    wrong = [
        d.mdm_id
        for d in Device.objects.filter(integration=integration, platform="ios")
        if stored_profiles(d) != fleet_profiles(emulator, d.mdm_id)
    ]
    assert wrong == [], f"{len(wrong)} devices with wrong profiles"


def test_a_device_whose_apps_failed_is_asked_again_next_sync_without_checking_in(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    emulator.set_faults(
        [{"kind": "error", "status": 500, "product": "core", "path": "appinventory", "after": 5}]
    )
    sync(integration)
    emulator.clear_faults()
    missing = Device.objects.filter(integration=integration, apps_checkin__isnull=True).count()
    assert missing > 0

    sync(integration)

    assert not Device.objects.filter(integration=integration, apps_checkin__isnull=True).exists()


def test_the_same_app_twice_in_one_inventory(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    uuid = sorted(uuids_of(emulator, "Sales"))[0]
    device = next(d for d in emulator.fleet.core.devices if d.uuid == uuid)
    device.apps = list(device.apps) + list(device.apps)
    # The same identifier listed again under another name and version.
    original = emulator.fleet.apps[device.apps[0]]
    emulator.fleet.apps.append(dataclasses.replace(original, version="999", name="Twin"))
    device.apps.append(len(emulator.fleet.apps) - 1)

    run = sync(integration)

    stored = Device.objects.get(integration=integration, mdm_id=uuid)
    assert run.status == "done", run.error
    assert stored_apps(stored) == fleet_apps(emulator, uuid)
    assert DeviceApp.objects.filter(device=stored).count() == len(fleet_apps(emulator, uuid))

    device.last_seen = (device.last_seen or 0) + 60_000
    again = sync(integration)
    assert again.status == "done", again.error
    assert DeviceApp.objects.filter(device=stored).count() == len(fleet_apps(emulator, uuid))


def test_a_user_whose_fields_change_is_updated_on_every_device(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    sync(integration)
    # A user with several devices, some in different batches.
    counts = {}
    synced = set(Device.objects.filter(integration=integration).values_list("mdm_id", flat=True))
    for device in emulator.fleet.core.devices:
        if device.uuid in synced and device.user is not None:
            counts.setdefault(device.user, []).append(device)
    user = max(counts, key=lambda u: len(counts[u]) if u is not None else 0)
    user.first_name = "Renamed"
    user.last_name = "Person"
    user.email = "renamed.person@acme.example"

    run = sync(integration)

    assert run.status == "done"
    rows = DeviceUser.objects.filter(email="renamed.person@acme.example")
    assert rows.count() == 1
    row = rows.get()
    assert (row.first_name, row.last_name) == ("Renamed", "Person")
    again = sync(integration)
    assert (again.added, again.updated, again.moved) == (0, 0, 0)


def test_an_adhoc_sync_of_one_device_while_a_full_sync_runs(tenant, emulator):
    """An unknown device activates and is synced alone just after the full sync read its
    index; the full sync then meets the same device."""
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    sync(integration)
    selected = set()
    for name in CORE_LABELS:
        selected |= set(uuids_of(emulator, name))
    newcomer = next(
        d for d in emulator.fleet.core.devices if d.uuid not in selected and d.status == "ACTIVE"
    )
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members",
            {"add": [newcomer.uuid]})  # fmt: skip

    def adhoc():
        connector = connector_for(integration, retries=3, backoff=0.05)
        try:
            record = connector.find_device(integration.space_id, newcomer.uuid, "uuid")
            assert sync_one_device(integration, connector, record) is not None
        finally:
            connector.close()
        # Meanwhile the device checks in again: one app fewer, a newer OS.
        newcomer.apps = list(newcomer.apps)[1:]
        newcomer.last_seen = (newcomer.last_seen or 0) + 60_000
        newcomer.os_version = "99.0"

    run = sync_after_index(integration, adhoc)

    stored = Device.objects.get(integration=integration, mdm_id=newcomer.uuid)
    assert run.status == "done", run.error
    problems = []
    if stored.os_version != "99.0":
        problems.append(f"row keeps the ad-hoc's values: os_version={stored.os_version!r}")
    extra = stored_apps(stored) - fleet_apps(emulator, newcomer.uuid)
    if extra:
        problems.append(f"apps gone from the MDM still stored: {sorted(extra)}")
    if run.added:
        problems.append(f"counted as added by the full sync too: added={run.added}")
    assert problems == []


def test_an_adhoc_sync_during_a_full_sync_of_a_device_that_reenrolled(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    sync(integration)
    old = sorted(uuids_of(emulator, "Sales"))[0]
    record_before = Device.objects.get(integration=integration, mdm_id=old)

    def reenrol_then_adhoc():
        new = control(emulator, "POST", f"/fleet/core/devices/{old}/reenrol", {})
        control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members",
                {"add": [new["uuid"]]})  # fmt: skip
        reenrol_then_adhoc.new = new["uuid"]
        connector = connector_for(integration, retries=3, backoff=0.05)
        try:
            record = connector.find_device(integration.space_id, new["uuid"], "uuid")
            sync_one_device(integration, connector, record)
        finally:
            connector.close()

    run = sync_after_index(integration, reenrol_then_adhoc)

    assert run.status == "done", run.error
    rows = Device.objects.filter(integration=integration, mdm_id__in=[old, reenrol_then_adhoc.new])
    assert list(rows.values_list("pk", "mdm_id")) == [(record_before.pk, reenrol_then_adhoc.new)]


def test_a_sync_after_an_engine_run_was_interrupted_by_a_bug_mid_batch(tenant, emulator):
    """A crash after some batches committed: the next sync completes, counts nothing twice."""
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    original = BatchWriter.write
    calls = {"n": 0}

    def write(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return original(self, *args, **kwargs)

    BatchWriter.write = write
    try:
        with pytest.raises(RuntimeError):
            sync(integration)
    finally:
        BatchWriter.write = original

    run = sync(integration)
    again = sync(integration)

    assert run.status == "done"
    assert (again.added, again.updated, again.moved, again.removed) == (0, 0, 0, 0)
    wrong = [
        d.mdm_id
        for d in Device.objects.filter(integration=integration)
        if stored_apps(d) != fleet_apps(emulator, d.mdm_id)
    ]
    assert wrong == []


def test_a_full_engine_run_with_a_cloud_in_the_same_tenant(tenant, emulator):
    core = add_integration(tenant, emulator, "core", CORE_LABELS)
    from tests.conftest import CLOUD_GROUPS

    cloud = add_integration(tenant, emulator, "cloud", CLOUD_GROUPS)

    assert SyncEngine(core, connector_for(core, retries=3, backoff=0.05)).run().status == "done"
    assert sync(cloud).status == "done"
    assert sync(core).status == "done"
    again = sync(cloud)
    assert (again.added, again.updated, again.moved, again.removed) == (0, 0, 0, 0)


def test_a_returning_device_activated_while_the_sync_runs_stays_active(tenant, emulator):
    """A removed device comes back to Sales; its agent activates (an ad-hoc sync brings it
    back, then it is activated) just after the full sync read its index."""
    from bastion.api.models import DeviceCredential
    from tests.threats.conftest import activate

    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    sync(integration)
    others = set(uuids_of(emulator, "Executives")) | set(uuids_of(emulator, "Engineering"))
    uuid = sorted(u for u in uuids_of(emulator, "Sales") if u not in others)[0]
    path = f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members"
    control(emulator, "POST", path, {"remove": [uuid]})
    sync(integration)
    assert Device.objects.get(integration=integration, mdm_id=uuid).state == Device.REMOVED
    control(emulator, "POST", path, {"add": [uuid]})
    tokens = []

    def activation():
        connector = connector_for(integration, retries=3, backoff=0.05)
        try:
            record = connector.find_device(integration.space_id, uuid, "uuid")
            device = sync_one_device(integration, connector, record)
        finally:
            connector.close()
        assert device.state == Device.WAITING
        tokens.append(activate(device))

    run = sync_after_index(integration, activation)

    device = Device.objects.get(integration=integration, mdm_id=uuid)
    assert run.status == "done"
    assert DeviceCredential.authenticate(tokens[0]) is not None
    assert device.state == Device.ACTIVE, ("activation undone by the full sync", device.state)


def test_devices_in_several_selected_labels_across_batches(tenant, emulator):
    """Many devices put in Engineering (listed last) and Executives (listed first) too."""
    integration = add_integration(tenant, emulator, "core", CORE_LABELS)
    active = {d.uuid for d in emulator.fleet.core.devices if d.status == "ACTIVE"}
    engineering = sorted(u for u in uuids_of(emulator, "Engineering") if u in active)[:150]
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Executives')}/members",
            {"add": engineering})  # fmt: skip
    control(emulator, "POST", f"/fleet/core/labels/{label_id(emulator, 'Sales')}/members",
            {"add": engineering[:75]})  # fmt: skip

    run = sync(integration)
    again = sync(integration)

    assert run.status == "done"
    groups = dict(
        Device.objects.filter(integration=integration, mdm_id__in=engineering).values_list(
            "mdm_id", "group__mdm_group_name"
        )
    )
    assert set(groups.values()) == {"Executives"}
    assert len(groups) == len(engineering)
    assert (again.added, again.updated, again.moved, again.removed) == (0, 0, 0, 0)
    assert run.added == Device.objects.filter(integration=integration).count()
