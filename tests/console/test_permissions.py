"""A read-only administrator can change nothing; nobody sees another tenant's data."""

import pytest
from django.urls import reverse

from bastion.console.models import ConsoleSettings
from bastion.inventory.models import ConsoleGroup, Device
from bastion.mdm.models import Integration, SyncRun
from bastion.tenancy.models import AuditEntry, Tenant
from bastion.threats.matrix import matrix_for
from tests.console.conftest import make_devices, signed_in


def write_requests(integration, event_id=1, action_id=1):
    pk = integration.pk
    return [
        ("console:tenant_settings", [], {"name": "Hijacked", "anonymous_users": "on"}),
        ("console:os_risk", [], {"min_ios_version": "18.0"}),
        ("console:mdm_add", [], {"provider": "core"}),
        ("console:mdm_setup", [], {"url": "http://x", "username": "a", "name": "b"}),
        ("console:mdm_groups", [], {"op": "finish"}),
        ("console:mdm_edit", [pk], {"url": "http://x", "username": "a", "name": "Hijacked",
                                     "sync_interval_minutes": "60"}),
        ("console:mdm_edit_groups", [pk], {"op": "finish"}),
        ("console:mdm_remove", [pk], {"undo_actions": "keep", "confirm_name": integration.name}),
        ("console:sync_now", [pk], {}),
        ("console:activation_rotate", [pk], {}),
        ("console:activation_regenerate", [pk], {"days": "3"}),
        ("console:activation_reveal", [pk], {}),
        ("console:activation_decide", [1], {"decision": "approve"}),
        ("console:policy", [], {"op": "deploy"}),
        ("console:threat_retry", [event_id, action_id], {}),
    ]  # fmt: skip


def snapshot(tenant, integration):
    integration.refresh_from_db()
    tenant.refresh_from_db()
    return (
        tenant.name,
        tenant.anonymous_users,
        integration.name,
        Integration.objects.count(),
        SyncRun.objects.count(),
        ConsoleSettings.objects.filter(tenant=tenant, min_ios_version="18.0").exists(),
        AuditEntry.objects.exclude(action="signed_in").count(),
        matrix_for(ConsoleGroup.default_for(tenant)).current.number,
    )


def test_read_only_administrator_changes_nothing(client, rob, tenant, core_integration):
    signed_in(client, rob, tenant)
    before = snapshot(tenant, core_integration)

    statuses = {}
    for name, args, data in write_requests(core_integration):
        statuses[name] = client.post(reverse(name, args=args), data).status_code

    assert set(statuses.values()) == {403}, statuses
    assert snapshot(tenant, core_integration) == before


def test_read_only_pages_hide_the_buttons(read_only_client, core_integration):
    page = read_only_client.get(reverse("console:mdm_detail", args=[core_integration.pk]))

    assert "Sync now" not in page.content.decode()
    assert "Add MDM" not in read_only_client.get(reverse("console:mdm_list")).content.decode()


def test_read_only_may_still_switch_tenant(read_only_client, rob, other_tenant):
    from bastion.tenancy.models import Membership

    Membership.objects.create(user=rob, tenant=other_tenant, role=Membership.READ_ONLY)

    response = read_only_client.post(reverse("console:switch_tenant"), {"tenant": other_tenant.pk})

    assert response.status_code == 302


@pytest.fixture
def globex_data(other_tenant, mallory):
    devices = make_devices(other_tenant, 2, prefix="globex")
    integration = Integration.objects.create(
        tenant=other_tenant, kind="core", name="Globex Core", url="https://g.example",
        username="g", password_encrypted="x",
    )  # fmt: skip
    return devices, integration


def test_alice_sees_none_of_globex_in_lists(admin_client, globex_data):
    pages = ["devices", "users", "mdm_list", "dashboard", "audit_log", "threats", "apps"]

    for name in pages:
        page = admin_client.get(reverse(f"console:{name}")).content.decode()
        assert "globex" not in page.lower(), name


def test_alice_cannot_open_globex_objects_by_id(admin_client, globex_data):
    devices, integration = globex_data
    urls = [
        reverse("console:device", args=[devices[0].pk]),
        reverse("console:mdm_detail", args=[integration.pk]),
        reverse("console:mdm_edit", args=[integration.pk]),
        reverse("console:mdm_remove", args=[integration.pk]),
        reverse("console:sync_history", args=[integration.pk]),
        reverse("console:sync_progress", args=[integration.pk]),
    ]

    for url in urls:
        assert admin_client.get(url).status_code == 404, url
    assert admin_client.post(reverse("console:sync_now", args=[integration.pk])).status_code == 404
    assert not SyncRun.objects.filter(integration=integration).exists()


def test_alice_cannot_edit_the_matrix_of_a_globex_group(admin_client, tenant, globex_data):
    globex_group = ConsoleGroup.objects.get(tenant__name="Globex", is_default=True)
    before = matrix_for(globex_group).current.number

    admin_client.post(reverse("console:policy"), {"group": globex_group.pk, "op": "deploy"})

    assert matrix_for(globex_group).current.number == before
    assert Tenant.objects.get(name="Globex")


def test_devices_of_globex_do_not_count_on_alices_dashboard(admin_client, tenant, globex_data):
    make_devices(tenant, 3)

    response = admin_client.get(reverse("console:dashboard"))

    assert response.context["active"] == 3
    assert Device.objects.count() == 5
