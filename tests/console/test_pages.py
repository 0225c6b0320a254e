"""Inventory pages: what they show, how they escape and mask, and their query counts."""

from django.urls import reverse

from bastion.inventory.models import App, Device, DeviceApp, DeviceUser, Profile
from bastion.tenancy.models import AuditEntry
from tests.console.conftest import make_devices


def test_a_device_named_script_shows_as_text(admin_client, tenant):
    make_devices(tenant, 1, prefix="<script>alert(1)</script>")

    list_page = admin_client.get(reverse("console:devices")).content.decode()
    device = Device.objects.get()
    detail = admin_client.get(reverse("console:device", args=[device.pk])).content.decode()

    for page in (list_page, detail):
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)" in page


def test_waiting_devices_are_greyed_out(admin_client, tenant):
    make_devices(tenant, 1, prefix="new", state=Device.WAITING)
    make_devices(tenant, 1, prefix="old", state=Device.ACTIVE)

    page = admin_client.get(reverse("console:devices")).content.decode()

    assert page.count('class="state-waiting"') == 1
    assert page.count('class="state-active"') == 1


def test_removed_devices_are_left_out_unless_asked_for(admin_client, tenant):
    make_devices(tenant, 2, prefix="gone", state=Device.REMOVED)

    default = admin_client.get(reverse("console:devices"))
    asked = admin_client.get(reverse("console:devices") + "?state=removed")

    assert default.context["page"].paginator.count == 0
    assert asked.context["page"].paginator.count == 2


def test_devices_page_on_the_server(admin_client, tenant):
    make_devices(tenant, 120)

    first = admin_client.get(reverse("console:devices"))
    third = admin_client.get(reverse("console:devices") + "?page=3")

    assert len(first.context["page"].object_list) == 50
    assert len(third.context["page"].object_list) == 20


def test_device_filters_ignore_nonsense(admin_client, tenant):
    make_devices(tenant, 3)

    response = admin_client.get(
        reverse("console:devices") + "?state=bogus&platform=x&group=abc&sort=zzz&page=-4"
    )

    assert response.status_code == 200
    assert response.context["page"].paginator.count == 3


def test_masked_users_show_only_initials(admin_client, tenant):
    DeviceUser.objects.create(
        tenant=tenant, user_key="k1", email="carol@example.com", display_name="Carol Danvers",
        masked=True,
    )  # fmt: skip

    page = admin_client.get(reverse("console:users")).content.decode()

    assert "carol@example.com" not in page
    assert "Carol Danvers" not in page
    assert "c***" in page


def test_searching_users_does_not_reveal_masked_ones(admin_client, tenant):
    DeviceUser.objects.create(
        tenant=tenant, user_key="k1", email="carol@example.com", display_name="Carol", masked=True
    )

    response = admin_client.get(reverse("console:users") + "?q=carol")

    assert response.context["page"].paginator.count == 0


def test_apps_count_the_devices_that_have_them(admin_client, tenant):
    devices = make_devices(tenant, 3)
    gone = make_devices(tenant, 1, prefix="gone", state=Device.REMOVED)
    app = App.objects.create(tenant=tenant, platform="ios", identifier="com.example.chat")
    for device in [*devices[:2], *gone]:
        DeviceApp.objects.create(device=device, app=app)

    response = admin_client.get(reverse("console:apps"))

    assert [row.device_count for row in response.context["page"]] == [2]


def test_profiles_filter_by_status_and_type(admin_client, tenant):
    Profile.objects.create(tenant=tenant, identifier="a", managed=True, status=Profile.TRUSTED)
    Profile.objects.create(tenant=tenant, identifier="b", managed=False)

    suspicious = admin_client.get(reverse("console:profiles") + "?status=suspicious")
    managed = admin_client.get(reverse("console:profiles") + "?type=managed")

    assert [p.identifier for p in suspicious.context["page"]] == ["b"]
    assert [p.identifier for p in managed.context["page"]] == ["a"]


def test_os_versions_below_the_minimum_are_highlighted(admin_client, tenant):
    make_devices(tenant, 5)  # iOS 17.0 to 17.4

    response = admin_client.post(reverse("console:os_risk"), {"min_ios_version": "17.2"})
    page = admin_client.get(reverse("console:os_risk"))

    assert response.status_code == 302
    assert page.context["at_risk"] == 2
    assert page.content.decode().count('class="below"') == 2
    assert AuditEntry.objects.filter(action="os_minimum_changed").exists()


def test_versions_compare_as_numbers_not_text(admin_client, tenant):
    make_devices(tenant, 1, prefix="ten")
    Device.objects.update(os_version="17.10")

    admin_client.post(reverse("console:os_risk"), {"min_ios_version": "17.9"})

    assert admin_client.get(reverse("console:os_risk")).context["at_risk"] == 0


def test_a_bad_minimum_is_named_and_nothing_changes(admin_client, tenant):
    admin_client.post(reverse("console:os_risk"), {"min_ios_version": "17.2"})

    response = admin_client.post(reverse("console:os_risk"), {"min_ios_version": "seventeen"})

    assert response.status_code == 200
    assert "Write a version such as 17.4" in response.content.decode()
    assert tenant.console.min_ios_version == "17.2"


def test_tenant_settings_change_and_are_audited(admin_client, tenant):
    response = admin_client.post(
        reverse("console:tenant_settings"), {"name": "Acme Phones", "anonymous_users": "on"}
    )

    tenant.refresh_from_db()
    assert response.status_code == 302
    assert (tenant.name, tenant.anonymous_users) == ("Acme Phones", True)
    entry = AuditEntry.objects.get(action="tenant_settings_changed")
    assert entry.detail == {"changed": ["anonymous_users", "name"]}


def test_tenant_settings_refuse_a_taken_name(admin_client, tenant, other_tenant):
    response = admin_client.post(reverse("console:tenant_settings"), {"name": "globex"})

    tenant.refresh_from_db()
    assert "already has this name" in response.content.decode()
    assert tenant.name == "Acme Mobile"


def test_audit_log_filters_by_action(admin_client, tenant):
    AuditEntry.objects.create(tenant=tenant, actor="alice", action="mdm_added")
    AuditEntry.objects.create(tenant=tenant, actor="alice", action="sync_requested")

    response = admin_client.get(reverse("console:audit_log") + "?action=mdm_added")

    assert [entry.action for entry in response.context["page"]] == ["mdm_added"]


def test_devices_page_query_count_stays_flat(admin_client, tenant, django_assert_max_num_queries):
    make_devices(tenant, 250)

    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("console:devices"))

    assert len(response.context["page"].object_list) == 50


def test_dashboard_query_count_stays_flat(
    admin_client, tenant, synced_core, django_assert_max_num_queries
):
    make_devices(tenant, 250)

    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("console:dashboard"))

    assert response.context["active"] == 250
    assert response.context["integrations"][0].last_run is not None
