from bastion.activation.models import ActivationSettings
from bastion.api.models import DeviceCredential
from bastion.inventory.models import ConsoleGroup, Device, DeviceUser
from tests.activation.conftest import (
    cloud_device_in,
    code_of,
    core_device_in,
    core_device_outside,
    link_token,
    requests_to,
)
from tests.conftest import CORE_LABELS


def test_a_synced_core_device_activates_with_the_link(synced_core, emulator, device_client):
    uuid = core_device_in(emulator, "Sales")

    response = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid})

    assert response.status_code == 200, response.content
    body = response.json()
    device = Device.objects.get(integration=synced_core, mdm_id=uuid)
    assert device.state == Device.ACTIVE
    assert device.agent_kind == Device.AGENT_STANDALONE
    assert body["matrix"]["group"] == {"id": device.group_id, "name": "Core EU / Sales"}
    assert DeviceCredential.authenticate(body["credential"]).device == device


def test_a_cloud_device_activates_with_its_managed_app_config(
    synced_cloud, emulator, device_client, settings
):
    state = cloud_device_in(emulator, "Sales Team")

    response = device_client(
        "/activate",
        {
            "MDMDeviceID": str(state["id"]),
            "tenantid": synced_cloud.tenant.tenant_id,
            "defaultchannel": settings.BASTION_PUBLIC_URL + "/",
        },
    )

    assert response.status_code == 200, response.content
    device = Device.objects.get(integration=synced_cloud, mdm_id=str(state["id"]))
    assert device.state == Device.ACTIVE
    assert response.json()["tenant_id"] == synced_cloud.tenant.tenant_id


def test_a_legacy_cloud_agent_activates_with_its_udid(synced_cloud, emulator, device_client):
    state = cloud_device_in(emulator, "iOS Devices", platform="IOS")

    response = device_client(
        "/activate", {"uuid": state["udid"], "tenantid": synced_cloud.tenant.tenant_id}
    )

    assert response.status_code == 200, response.content
    assert Device.objects.get(pk=response.json()["device_id"]).mdm_id == str(state["id"])


def test_the_mtd_code_marks_the_device_as_running_the_mdm_agent(
    synced_core, emulator, device_client
):
    uuid = core_device_in(emulator, "Engineering")

    response = device_client(
        "/activate", {"activation_code": code_of(synced_core), "mdm_id": uuid.upper()}
    )

    assert response.status_code == 200, response.content
    device = Device.objects.get(integration=synced_core, mdm_id=uuid)
    assert device.agent_kind == Device.AGENT_MDM
    assert device.activated_at is not None


def test_an_unknown_device_in_a_selected_label_comes_in_through_an_ad_hoc_sync(
    core_integration, emulator, device_client
):
    uuid = core_device_in(emulator, "Sales")
    assert not Device.objects.exists()

    response = device_client("/activate", {"token": link_token(core_integration), "mdm_id": uuid})

    assert response.status_code == 200, response.content
    device = Device.objects.get(integration=core_integration, mdm_id=uuid)
    assert device.group.name == "Core EU / Sales"
    assert device.state == Device.ACTIVE
    assert DeviceUser.objects.filter(pk=device.user_id).exists()
    assert requests_to(emulator, "core", f"/api/v2/devices/{uuid}/labels")
    assert Device.objects.count() == 1


def test_an_unknown_cloud_device_comes_in_by_its_device_id(
    cloud_integration, emulator, device_client
):
    state = cloud_device_in(emulator, "Sales Team")

    response = device_client(
        "/activate", {"token": link_token(cloud_integration), "mdm_id": str(state["id"])}
    )

    assert response.status_code == 200, response.content
    device = Device.objects.get(pk=response.json()["device_id"])
    assert device.group.mdm_group_name in {"Executives", "Sales Team", "iOS Devices"}
    assert requests_to(emulator, "cloud", f"/api/v1/device/{state['id']}")


def test_the_mtd_code_places_a_device_in_no_selected_label_in_the_default_group(
    core_integration, emulator, device_client
):
    uuid = core_device_outside(emulator, CORE_LABELS)

    response = device_client(
        "/activate", {"activation_code": code_of(core_integration), "mdm_id": uuid}
    )

    assert response.status_code == 200, response.content
    device = Device.objects.get(mdm_id=uuid)
    assert device.group == ConsoleGroup.default_for(core_integration.tenant)
    assert device.state == Device.ACTIVE


def test_the_link_refuses_a_device_in_no_selected_label(core_integration, emulator, device_client):
    uuid = core_device_outside(emulator, CORE_LABELS)

    response = device_client("/activate", {"token": link_token(core_integration), "mdm_id": uuid})

    assert response.status_code == 404
    assert response.json()["error"] == "not_managed"
    assert not Device.objects.exists()


def test_a_device_the_mdm_does_not_know_is_not_managed(core_integration, device_client):
    response = device_client(
        "/activate",
        {"token": link_token(core_integration), "mdm_id": "00000000-0000-4000-8000-000000000000"},
    )

    assert response.status_code == 404
    assert response.json()["message"] == "this device is not managed for this tenant"
    assert not Device.objects.exists()


def test_reinstalling_through_the_link_waits_for_an_administrator(
    synced_core, emulator, device_client, alice
):
    uuid = core_device_in(emulator, "Sales")
    first = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()
    devices_before = Device.objects.count()

    held = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid})
    waiting = device_client("/activate/pickup", held.json())
    approval = alice.post(f"/api/admin/v1/activation/requests/{held.json()['request_id']}/approve")
    collected = device_client("/activate/pickup", held.json())

    assert held.status_code == 202
    assert "credential" not in held.json()
    assert waiting.status_code == 202
    assert approval.status_code == 200, approval.content
    assert collected.status_code == 200, collected.content
    assert DeviceCredential.authenticate(collected.json()["credential"]) is not None
    assert DeviceCredential.authenticate(first["credential"]) is None
    assert Device.objects.count() == devices_before
    assert synced_core.tenant.audit_entries.filter(
        action="device.reactivation_approved", actor="alice"
    ).exists()
    assert device_client("/activate/pickup", held.json()).status_code == 401


def test_a_rejected_reactivation_gets_no_credential(synced_core, emulator, device_client, alice):
    uuid = core_device_in(emulator, "Sales")
    first = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()
    held = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()

    alice.post(f"/api/admin/v1/activation/requests/{held['request_id']}/reject")
    answer = device_client("/activate/pickup", held)

    assert answer.status_code == 403
    assert DeviceCredential.authenticate(first["credential"]) is not None


def test_a_tenant_may_turn_the_reactivation_check_off(synced_core, emulator, device_client):
    ActivationSettings.objects.update_or_create(
        tenant=synced_core.tenant, defaults={"require_reactivation_approval": False}
    )
    uuid = core_device_in(emulator, "Sales")
    first = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()

    again = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid})

    assert again.status_code == 200
    assert DeviceCredential.authenticate(first["credential"]) is None
    assert Device.objects.filter(mdm_id=uuid).count() == 1


def test_a_device_reactivates_at_once_with_its_own_credential(synced_core, emulator, device_client):
    uuid = core_device_in(emulator, "Sales")
    first = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()

    again = device_client("/reactivate", {}, credential=first["credential"])
    stranger = device_client("/reactivate", {}, credential="0123456789ab.nope")

    assert again.status_code == 200, again.content
    assert again.json()["device_id"] == first["device_id"]
    assert DeviceCredential.authenticate(again.json()["credential"]) is not None
    assert DeviceCredential.authenticate(first["credential"]) is None
    assert stranger.status_code == 401


def test_a_device_id_in_two_integrations_is_refused(tenant, emulator, device_client):
    from tests.conftest import add_integration, sync

    first = add_integration(tenant, emulator, "core", ["Sales"], name="Core EU")
    second = add_integration(tenant, emulator, "core", ["Sales"], name="Core US")
    sync(first)
    sync(second)
    uuid = core_device_in(emulator, "Sales")

    response = device_client("/activate", {"uuid": uuid, "tenantid": tenant.tenant_id})

    assert response.status_code == 409
    assert response.json()["error"] == "ambiguous_device"
    assert not Device.objects.filter(state=Device.ACTIVE).exists()
