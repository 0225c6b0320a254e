"""Bulk inserts meeting a row that another writer stored a moment before."""

import threading

import pytest
from django.db import connection, connections

from bastion.inventory.models import Device, DeviceApp, DeviceUser
from bastion.mdm.writer import BatchWriter, insert_rows
from tests.conftest import CORE_LABELS, add_integration, sync


def test_insert_rows_ignoring_conflicts_ignores_a_conflict(synced_core):
    """The documented contract of insert_rows(ignore_conflicts=True), on either database."""
    device = Device.objects.filter(integration=synced_core).first()
    row = DeviceApp.objects.filter(device=device).values_list("device_id", "app_id", "version")[0]

    insert_rows(DeviceApp, ["device_id", "app_id", "version"], [row], ignore_conflicts=True)

    assert DeviceApp.objects.filter(device=device, app_id=row[1]).count() == 1


@pytest.mark.skipif(connection.vendor == "sqlite", reason="in-memory SQLite takes one writer")
def test_two_integrations_of_one_tenant_synced_at_once(transactional_db, tenant, make_emulator):
    """Two Core integrations (say, two regions' servers sharing one directory) bring in the
    same people: two workers create the same users."""
    handle = make_emulator(devices=1500)
    core = add_integration(tenant, handle, "core", CORE_LABELS, name="Core EU")
    cloud = add_integration(tenant, handle, "core", CORE_LABELS, name="Core US")
    barrier = threading.Barrier(2)
    runs, errors = {}, []
    # The interleaving two workers can meet: the Cloud sync reads which users exist, then
    # the Core sync commits its first batch (creating many of those users), then the Cloud
    # sync inserts the users it believes are new.
    core_batch, cloud_read = threading.Event(), threading.Event()
    write, existing_users = BatchWriter.write, BatchWriter._existing_users

    def write_and_tell(self, *args, **kwargs):
        if self.integration.name == "Core EU":
            cloud_read.wait(60)
        write(self, *args, **kwargs)
        if self.integration.name == "Core EU":
            core_batch.set()

    def existing_then_wait(self, keys):
        found = existing_users(self, keys)
        if self.integration.name == "Core US" and not cloud_read.is_set():
            cloud_read.set()
            core_batch.wait(60)
        return found

    BatchWriter.write, BatchWriter._existing_users = write_and_tell, existing_then_wait

    def run(integration):
        try:
            barrier.wait()
            runs[integration.name] = sync(integration)
        except BaseException as error:  # noqa: BLE001
            errors.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in (core, cloud)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(300)
    finally:
        BatchWriter.write, BatchWriter._existing_users = write, existing_users

    assert errors == [], errors
    assert {name: r.status for name, r in runs.items()} == {"Core EU": "done", "Core US": "done"}, {
        kind: r.error for kind, r in runs.items()
    }
    assert DeviceUser.objects.filter(tenant=tenant).count() > 0
