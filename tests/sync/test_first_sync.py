from bastion.inventory.models import ConsoleGroup, Device, DeviceUser
from tests.conftest import sync


def test_a_core_sync_brings_in_every_active_device_of_the_selected_labels(core_integration):
    run = sync(core_integration)

    assert run.status == "done", run.error
    assert run.added > 0
    assert Device.objects.filter(integration=core_integration).count() == run.added
    assert set(Device.objects.values_list("state", flat=True)) == {Device.WAITING}


def test_a_cloud_sync_brings_in_devices_of_the_selected_groups(cloud_integration):
    run = sync(cloud_integration)

    assert run.status == "done", run.error
    assert run.added > 0
    groups = ConsoleGroup.objects.filter(integration=cloud_integration, devices__isnull=False)
    assert groups.distinct().count() >= 2
    assert DeviceUser.objects.count() > 0
