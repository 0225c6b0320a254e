"""The Profiles page (filters, sorting, trust and distrust, a profile's devices) and the
Apps page (malicious marks)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bastion.inventory.models import App, Device, DeviceApp, DeviceProfile, Profile
from bastion.tenancy.models import AuditEntry
from bastion.threats.inventory_models import MaliciousApp
from bastion.threats.models import ThreatEvent
from emulators.mobileiron.server import start_emulator
from tests.conftest import add_integration
from tests.console.conftest import make_devices, signed_in
from tests.inventory_threats.conftest import (
    LABEL,
    PROXY_ID,
    PROXY_NAME,
    SPYWARE,
    activate_all,
    carry,
    deliver_all,
    fleet,
    ios_devices,
    labels_of,
    respond_with_label,
    resync,
)

XSS = "<script>alert(1)</script>"


def profile(tenant, identifier, *, status=Profile.SUSPICIOUS, managed=False, name="", devices=()):
    row = Profile.objects.create(
        tenant=tenant, identifier=identifier, name=name or identifier, status=status,
        managed=managed,
    )  # fmt: skip
    DeviceProfile.objects.bulk_create([DeviceProfile(device=d, profile=row) for d in devices])
    return row


def shown(response) -> list[str]:
    return [row.identifier for row in response.context["page"]]


@pytest.fixture
def three(tenant):
    """Three profiles with distinct names, detection times and device counts."""
    devices = make_devices(tenant, 3)
    now = timezone.now()
    rows = [
        profile(tenant, "b.vpn", devices=devices[:3]),
        profile(tenant, "a.mail", status=Profile.TRUSTED, managed=True, devices=devices[:1]),
        profile(tenant, "c.wifi", status=Profile.UNTRUSTED, devices=devices[:2]),
    ]
    for age, row in zip((2, 1, 3), rows, strict=True):
        Profile.objects.filter(pk=row.pk).update(detected_on=now - timedelta(days=age))
    return rows


# The Profiles list.


def test_profiles_filter_by_status_and_type(admin_client, three):
    url = reverse("console:profiles")

    assert shown(admin_client.get(url + "?status=untrusted")) == ["c.wifi"]
    assert shown(admin_client.get(url + "?status=suspicious")) == ["b.vpn"]
    assert shown(admin_client.get(url + "?type=managed")) == ["a.mail"]
    assert shown(admin_client.get(url + "?type=unmanaged&status=untrusted")) == ["c.wifi"]


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("name", ["a.mail", "b.vpn", "c.wifi"]),
        ("-name", ["c.wifi", "b.vpn", "a.mail"]),
        ("detected_on", ["c.wifi", "b.vpn", "a.mail"]),
        ("-detected_on", ["a.mail", "b.vpn", "c.wifi"]),
        ("device_count", ["a.mail", "c.wifi", "b.vpn"]),
        ("-device_count", ["b.vpn", "c.wifi", "a.mail"]),
    ],
)
def test_profiles_sort_on_the_server_both_ways(admin_client, three, sort, expected):
    response = admin_client.get(reverse("console:profiles") + f"?sort={sort}")

    assert shown(response) == expected


def test_a_sorted_column_header_links_to_the_reverse_order(admin_client, three):
    response = admin_client.get(reverse("console:profiles") + "?status=suspicious&sort=name")
    page = response.content.decode()

    assert 'aria-sort="ascending"' in page
    assert "?status=suspicious&amp;sort=-name" in page
    assert "?status=suspicious&amp;sort=device_count" in page


@pytest.mark.parametrize(
    "query, field",
    [("status=evil", "status"), ("type=both", "type"), ("sort=-secret", "sort")],
)
def test_a_bad_filter_is_refused_naming_the_parameter(admin_client, three, query, field):
    response = admin_client.get(reverse("console:profiles") + f"?{query}")

    assert response.status_code == 400
    assert f"{field}: must" in response.content.decode()
    assert shown(response) == []


def test_profiles_are_paged(admin_client, tenant):
    Profile.objects.bulk_create(
        [Profile(tenant=tenant, identifier=f"p{index:03}") for index in range(60)]
    )

    first = admin_client.get(reverse("console:profiles") + "?sort=name")
    second = admin_client.get(reverse("console:profiles") + "?sort=name&page=2")

    assert len(shown(first)) == 50
    assert shown(second) == [f"p{index:03}" for index in range(50, 60)]
    assert "sort=name&amp;page=2" in first.content.decode()


def test_profile_names_from_the_mdm_are_escaped(admin_client, tenant):
    row = profile(tenant, XSS, name=XSS)
    row.organization = XSS
    row.save()

    pages = [
        admin_client.get(reverse("console:profiles")),
        admin_client.get(reverse("console:profile", args=[row.pk])),
    ]

    for response in pages:
        assert XSS not in response.content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.content.decode()


def test_the_profile_list_runs_a_fixed_number_of_queries(
    admin_client, tenant, django_assert_max_num_queries
):
    devices = make_devices(tenant, 220)
    rows = Profile.objects.bulk_create(
        [Profile(tenant=tenant, identifier=f"p{index:03}") for index in range(220)]
    )
    DeviceProfile.objects.bulk_create(
        [DeviceProfile(device=d, profile=p) for d, p in zip(devices, rows, strict=True)]
    )
    admin_client.get(reverse("console:profiles"))

    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("console:profiles") + "?sort=-device_count")

    assert len(shown(response)) == 50


# Trust and distrust.


def test_an_administrator_distrusts_a_profile_and_its_devices_raise_a_threat(
    admin_client, tenant, three
):
    suspicious = three[0]

    response = admin_client.post(
        reverse("console:profile_distrust", args=[suspicious.pk]),
        {"back": "status=suspicious&sort=-name&next=https://evil.example"},
    )

    suspicious.refresh_from_db()
    assert suspicious.status == Profile.UNTRUSTED
    assert response.status_code == 302
    assert response["Location"] == reverse("console:profiles") + "?status=suspicious&sort=-name"
    events = ThreatEvent.objects.filter(tenant=tenant, threat_id="untrusted_profile")
    assert events.count() == 3
    entry = AuditEntry.objects.get(action="profile.distrust", object_id=str(suspicious.pk))
    assert entry.actor == "alice"
    assert entry.detail["raised"] == 3


def test_trusting_a_profile_closes_its_threats(admin_client, tenant, three):
    untrusted = three[2]
    admin_client.post(reverse("console:profile_distrust", args=[untrusted.pk]))
    assert ThreatEvent.objects.filter(state=ThreatEvent.ACTIVE).count() == 2

    response = admin_client.post(
        reverse("console:profile_trust", args=[untrusted.pk]), {"from": "detail"}
    )

    untrusted.refresh_from_db()
    assert untrusted.status == Profile.TRUSTED
    assert response["Location"] == reverse("console:profile", args=[untrusted.pk])
    assert not ThreatEvent.objects.filter(state=ThreatEvent.ACTIVE).exists()
    assert AuditEntry.objects.filter(action="profile.trust", actor="alice").count() == 1


def test_buttons_offer_only_the_decisions_that_change_something(admin_client, three):
    page = admin_client.get(reverse("console:profiles")).content.decode()

    trusted, suspicious, untrusted = three[1], three[0], three[2]
    assert reverse("console:profile_trust", args=[trusted.pk]) not in page
    assert reverse("console:profile_distrust", args=[trusted.pk]) in page
    assert reverse("console:profile_trust", args=[suspicious.pk]) in page
    assert reverse("console:profile_distrust", args=[suspicious.pk]) in page
    assert reverse("console:profile_distrust", args=[untrusted.pk]) not in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_a_read_only_administrator_sees_no_buttons_and_cannot_decide(read_only_client, three):
    suspicious = three[0]

    page = read_only_client.get(reverse("console:profiles")).content.decode()
    trust = read_only_client.post(reverse("console:profile_trust", args=[suspicious.pk]))
    distrust = read_only_client.post(reverse("console:profile_distrust", args=[suspicious.pk]))

    assert reverse("console:profile_trust", args=[suspicious.pk]) not in page
    assert "Distrust" not in page
    assert (trust.status_code, distrust.status_code) == (403, 403)
    suspicious.refresh_from_db()
    assert suspicious.status == Profile.SUSPICIOUS
    assert not AuditEntry.objects.filter(action__startswith="profile.").exists()


def test_another_tenants_profile_is_not_found(client, mallory, other_tenant, three):
    signed_in(client, mallory, other_tenant)
    suspicious = three[0]

    detail = client.get(reverse("console:profile", args=[suspicious.pk]))
    trust = client.post(reverse("console:profile_trust", args=[suspicious.pk]))
    listed = client.get(reverse("console:profiles"))

    assert (detail.status_code, trust.status_code) == (404, 404)
    assert shown(listed) == []
    suspicious.refresh_from_db()
    assert suspicious.status == Profile.SUSPICIOUS


def test_trust_needs_a_post(admin_client, three):
    response = admin_client.get(reverse("console:profile_trust", args=[three[0].pk]))

    assert response.status_code == 405


# A profile's page.


def test_a_profiles_page_lists_its_devices_in_pages(admin_client, tenant):
    devices = make_devices(tenant, 55)
    gone = make_devices(tenant, 2, prefix="gone", state=Device.REMOVED)
    row = profile(tenant, "com.example.vpn", devices=[*devices, *gone])
    elsewhere = make_devices(tenant, 1, prefix="other")
    profile(tenant, "com.example.other", devices=elsewhere)

    first = admin_client.get(reverse("console:profile", args=[row.pk]))
    second = admin_client.get(reverse("console:profile", args=[row.pk]) + "?page=2")

    assert first.context["page"].paginator.count == 55
    assert [d["mdm_id"] for d in second.context["rows"]] == [f"dev-{i}" for i in range(50, 55)]
    assert "gone-0" not in first.content.decode() + second.content.decode()
    assert "other-0" not in first.content.decode()
    assert reverse("console:device", args=[devices[0].pk]) in first.content.decode()


# The Apps page.


@pytest.fixture
def chat(tenant):
    devices = make_devices(tenant, 3)
    app = App.objects.create(tenant=tenant, platform="ios", identifier="com.example.chat")
    DeviceApp.objects.bulk_create([DeviceApp(device=d, app=app) for d in devices])
    App.objects.create(tenant=tenant, platform="android", identifier="com.example.maps")
    return app


def test_an_administrator_marks_an_app_malicious_and_its_devices_raise_a_threat(
    admin_client, tenant, chat
):
    response = admin_client.post(
        reverse("console:app_mark"),
        {"platform": "ios", "identifier": chat.identifier, "back": "platform=ios"},
    )

    assert response["Location"] == reverse("console:apps") + "?platform=ios"
    mark = MaliciousApp.objects.get(tenant=tenant)
    assert (mark.identifier, mark.marked_by) == (chat.identifier, "alice")
    assert ThreatEvent.objects.filter(tenant=tenant, threat_id="malicious_app").count() == 3
    assert AuditEntry.objects.filter(action="app.mark_malicious", actor="alice").exists()

    page = admin_client.get(reverse("console:apps"))

    marked = {app.identifier: app.malicious for app in page.context["page"]}
    assert marked == {"com.example.chat": True, "com.example.maps": False}
    assert "Unmark" in page.content.decode()


def test_the_malicious_filter_shows_marked_apps_only(admin_client, tenant, chat):
    MaliciousApp.objects.create(
        tenant=tenant, platform="ios", identifier=chat.identifier, marked_by="alice"
    )

    response = admin_client.get(reverse("console:apps") + "?malicious=1")

    assert shown(response) == ["com.example.chat"]


def test_unmarking_closes_the_threats(admin_client, tenant, chat):
    admin_client.post(
        reverse("console:app_mark"), {"platform": "ios", "identifier": chat.identifier}
    )

    response = admin_client.post(
        reverse("console:app_unmark"), {"platform": "ios", "identifier": chat.identifier}
    )

    assert response.status_code == 302
    assert not MaliciousApp.objects.exists()
    assert not ThreatEvent.objects.filter(state=ThreatEvent.ACTIVE).exists()
    assert AuditEntry.objects.filter(action="app.unmark_malicious").count() == 1


def test_an_app_no_device_reports_can_be_marked_by_identifier(admin_client, tenant, chat):
    admin_client.post(
        reverse("console:app_mark"),
        {"platform": "android", "identifier": "com.evil.dropper", "reason": "dropper"},
    )

    page = admin_client.get(reverse("console:apps")).content.decode()

    assert MaliciousApp.objects.get(identifier="com.evil.dropper").reason == "dropper"
    assert "Marked, not seen on any device yet" in page
    assert "com.evil.dropper" in page


@pytest.mark.parametrize(
    "data, field",
    [
        ({"platform": "windows", "identifier": "com.example.chat"}, "platform"),
        ({"platform": "ios", "identifier": "  "}, "identifier"),
        ({"platform": "ios", "identifier": "x" * 300}, "identifier"),
        ({"platform": "ios", "identifier": "com.a\x00b"}, "identifier"),
        ({"platform": "ios", "identifier": "com.example.chat", "reason": "r" * 600}, "reason"),
    ],
)
def test_a_bad_mark_is_refused_naming_the_field(admin_client, tenant, chat, data, field):
    response = admin_client.post(reverse("console:app_mark"), data)

    assert response.status_code == 400
    assert f"{field}: " in response.content.decode()
    assert not MaliciousApp.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="app.").exists()


def test_unmarking_an_app_that_is_not_marked_is_refused(admin_client, chat):
    response = admin_client.post(
        reverse("console:app_unmark"), {"platform": "ios", "identifier": chat.identifier}
    )

    assert response.status_code == 400
    assert "identifier: this app is not marked malicious" in response.content.decode()


def test_a_read_only_administrator_cannot_mark_or_unmark(read_only_client, tenant, chat):
    MaliciousApp.objects.create(
        tenant=tenant, platform="android", identifier="com.example.maps", marked_by="alice"
    )

    page = read_only_client.get(reverse("console:apps")).content.decode()
    mark = read_only_client.post(
        reverse("console:app_mark"), {"platform": "ios", "identifier": chat.identifier}
    )
    unmark = read_only_client.post(
        reverse("console:app_unmark"), {"platform": "android", "identifier": "com.example.maps"}
    )

    assert "Mark malicious" not in page and "Unmark" not in page
    assert (mark.status_code, unmark.status_code) == (403, 403)
    assert list(MaliciousApp.objects.values_list("identifier", flat=True)) == ["com.example.maps"]


def test_another_tenants_marks_stay_in_their_tenant(client, mallory, other_tenant, tenant, chat):
    MaliciousApp.objects.create(
        tenant=tenant, platform="ios", identifier=chat.identifier, marked_by="alice"
    )
    signed_in(client, mallory, other_tenant)

    listed = client.get(reverse("console:apps"))
    unmark = client.post(
        reverse("console:app_unmark"), {"platform": "ios", "identifier": chat.identifier}
    )
    client.post(reverse("console:app_mark"), {"platform": "ios", "identifier": "com.globex.x"})

    assert shown(listed) == []
    assert chat.identifier not in listed.content.decode()
    assert unmark.status_code == 400
    assert MaliciousApp.objects.filter(tenant=tenant).count() == 1
    assert not ThreatEvent.objects.filter(tenant=tenant).exists()
    assert MaliciousApp.objects.get(identifier="com.globex.x").tenant == other_tenant


def test_app_names_are_escaped(admin_client, tenant):
    App.objects.create(tenant=tenant, platform="ios", identifier=XSS, name=XSS)

    page = admin_client.get(reverse("console:apps")).content.decode()

    assert XSS not in page
    assert "&lt;script&gt;" in page


def test_the_apps_page_runs_a_fixed_number_of_queries(
    admin_client, tenant, django_assert_max_num_queries
):
    devices = make_devices(tenant, 220)
    apps = App.objects.bulk_create(
        [
            App(tenant=tenant, platform="ios", identifier=f"com.app{index:03}")
            for index in range(220)
        ]
    )
    DeviceApp.objects.bulk_create(
        [DeviceApp(device=d, app=a) for d, a in zip(devices, apps, strict=True)]
    )
    MaliciousApp.objects.bulk_create(
        [
            MaliciousApp(tenant=tenant, platform="ios", identifier=app.identifier, marked_by="a")
            for app in apps[::3]
        ]
    )
    admin_client.get(reverse("console:apps"))

    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("console:apps"))

    rows = list(response.context["page"])
    assert len(rows) == 50
    assert sum(row.malicious for row in rows) == len(
        [a for a in rows if int(a.identifier[-3:]) % 3 == 0]
    )


# Against the MobileIron emulator: a decision on the page reaches the MDM.


@pytest.fixture
def mdm():
    handle = start_emulator(fleet(), product="both")
    yield handle
    handle.stop()


@pytest.fixture
def core(tenant, mdm):
    """The Core after a first sync, with every device's agent active."""
    integration = add_integration(tenant, mdm, "core", ["Executives", "Engineering"])
    resync(integration)
    activate_all(integration)
    return integration


def test_distrust_and_trust_from_the_page_label_and_unlabel_the_device_in_the_mdm(
    admin_client, mdm, core
):
    respond_with_label(core, "untrusted_profile")
    first, second = ios_devices(core)[:2]
    carry(mdm, first, profiles=[0, 1])
    resync(core)
    deliver_all()
    proxy = Profile.objects.get(identifier=PROXY_ID)
    assert LABEL not in labels_of(mdm, first)

    page = admin_client.get(reverse("console:profiles") + "?status=suspicious")
    admin_client.post(reverse("console:profile_distrust", args=[proxy.pk]))
    deliver_all()

    assert PROXY_NAME not in page.content.decode()
    assert "&lt;script&gt;" in page.content.decode()
    assert LABEL in labels_of(mdm, first)
    assert LABEL not in labels_of(mdm, second)

    admin_client.post(reverse("console:profile_trust", args=[proxy.pk]))
    deliver_all()

    assert LABEL not in labels_of(mdm, first)


def test_marking_an_app_from_the_page_labels_its_carriers_in_the_mdm(admin_client, mdm, core):
    respond_with_label(core, "malicious_app")
    first, second = ios_devices(core)[:2]
    carry(mdm, first, apps=[0, 1])
    resync(core)

    admin_client.post(reverse("console:app_mark"), {"platform": "ios", "identifier": SPYWARE})
    deliver_all()

    assert LABEL in labels_of(mdm, first)
    assert LABEL not in labels_of(mdm, second)

    admin_client.post(reverse("console:app_unmark"), {"platform": "ios", "identifier": SPYWARE})
    deliver_all()

    assert LABEL not in labels_of(mdm, first)
