"""Cloud specifics: spaces other than the default, and privacy-obfuscated answers."""

from bastion.inventory.models import Device, DeviceUser
from tests.conftest import add_integration, sync


def test_a_space_other_than_the_default_syncs_through_device_searches(tenant, emulator):
    marketing = next(s.id for s in emulator.fleet.cloud.spaces if not s.default)
    names = ["Marketing iPhones", "All Devices"]
    integration = add_integration(
        tenant, emulator, "cloud", [], space_id=str(marketing), space_name="Marketing Space"
    )
    from bastion.mdm.services import select_groups
    from tests.conftest import groups_named

    select_groups(integration, groups_named(emulator, "cloud", names, space=marketing))

    run = sync(integration)

    assert run.status == "done", run.error
    in_space = {d.id for d in emulator.fleet.cloud.devices if d.space == marketing}
    synced = {int(mdm_id) for mdm_id in Device.objects.values_list("mdm_id", flat=True)}
    assert synced and synced <= in_space
    iphones = Device.objects.filter(group__mdm_group_name="Marketing iPhones")
    assert set(iphones.values_list("platform", flat=True)) <= {Device.IOS}


def test_obfuscated_values_count_as_missing_never_as_an_identity(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", ["Sales"], name="Core GDPR")
    integration.username = "gdpr"
    integration.save()

    run = sync(integration)

    assert run.status == "done", run.error
    assert set(Device.objects.values_list("serial_hash", flat=True)) == {""}
    assert not DeviceUser.objects.filter(email__contains="*").exists()
