"""Administrators' decisions: trust and distrust profiles, mark and unmark apps, from the
admin API and the command line; bad input changes nothing; large fleets cost no query per
device."""

import pytest
from click.testing import CliRunner

from bastion.cli import main
from bastion.inventory.models import Device, DeviceApp, Profile
from bastion.tenancy.models import AuditEntry
from bastion.threats.inventory import distrust_profile, mark_app_malicious
from bastion.threats.inventory_models import MaliciousApp
from bastion.threats.models import ThreatEvent
from tests.conftest import add_integration
from tests.inventory_threats.conftest import (
    LABEL,
    PROXY_ID,
    SPYWARE,
    activate_all,
    carry,
    check_in,
    deliver_all,
    ios_devices,
    labels_of,
    respond_with_label,
    resync,
)

API = "/api/admin/v1"


def open_events(threat_id: str):
    return ThreatEvent.objects.filter(threat_id=threat_id, state=ThreatEvent.ACTIVE)


@pytest.fixture
def proxy_on_two(core, mdm):
    """Two iPhones carry the user-installed proxy certificate, answered with a label."""
    respond_with_label(core, "suspicious_profile")
    respond_with_label(core, "untrusted_profile")
    first, second = ios_devices(core)[:2]
    carry(mdm, first, profiles=[0, 1])
    carry(mdm, second, profiles=[1])
    resync(core)
    deliver_all()
    return Profile.objects.get(identifier=PROXY_ID), first, second


def test_trust_closes_the_profiles_threats_and_survives_syncs(
    client, alice, mdm, core, proxy_on_two
):
    proxy, first, second = proxy_on_two
    assert LABEL in labels_of(mdm, first)

    response = client.post(f"{API}/profiles/{proxy.pk}/trust", headers=alice.headers)
    deliver_all()

    assert response.status_code == 200
    assert response.json()["status"] == "trusted"
    assert not open_events("suspicious_profile").exists()
    assert LABEL not in labels_of(mdm, first)
    assert LABEL not in labels_of(mdm, second)
    entry = AuditEntry.objects.get(action="profile.trust", object_id=str(proxy.pk))
    assert (entry.actor, entry.source_ip) == ("alice", "127.0.0.1")

    check_in(mdm, first)
    resync(core)
    proxy.refresh_from_db()
    assert proxy.status == Profile.TRUSTED
    assert not open_events("suspicious_profile").exists()


def test_distrust_raises_untrusted_on_every_carrier_and_keeps_the_shared_label(
    client, alice, mdm, core, proxy_on_two
):
    proxy, first, second = proxy_on_two

    response = client.post(f"{API}/profiles/{proxy.pk}/distrust", headers=alice.headers)
    deliver_all()

    assert response.json()["status"] == "untrusted"
    assert set(open_events("untrusted_profile").values_list("device_id", flat=True)) == {
        first.pk,
        second.pk,
    }
    assert not open_events("suspicious_profile").exists()
    # Both rows use the same label: it stays while the untrusted threat is open.
    assert LABEL in labels_of(mdm, first)

    # A second distrust and later syncs raise nothing more; the status stays.
    client.post(f"{API}/profiles/{proxy.pk}/distrust", headers=alice.headers)
    check_in(mdm, first)
    resync(core)
    assert open_events("untrusted_profile").count() == 2
    assert Profile.objects.get(pk=proxy.pk).status == Profile.UNTRUSTED


def test_read_only_and_other_tenants_cannot_decide(client, rita, alice, core, proxy_on_two):
    from bastion.tenancy.services import create_tenant

    proxy = proxy_on_two[0]
    other = create_tenant("Globex")

    refused = client.post(f"{API}/profiles/{proxy.pk}/trust", headers=rita.headers)
    missing = client.post(f"{API}/profiles/999999/trust", headers=alice.headers)
    with pytest.raises(Exception, match="no profile"):
        distrust_profile(other, proxy.pk, "mallory")

    assert refused.status_code == 403
    assert missing.status_code == 404
    assert missing.json()["field"] == "profile_id"
    assert Profile.objects.get(pk=proxy.pk).status == Profile.SUSPICIOUS


def test_profiles_are_filtered_and_sorted(client, alice, core, proxy_on_two):
    listed = client.get(f"{API}/profiles?sort=-device_count", headers=alice.headers).json()
    suspicious = client.get(f"{API}/profiles?status=suspicious", headers=alice.headers).json()
    managed = client.get(f"{API}/profiles?type=managed", headers=alice.headers).json()
    bad = client.get(f"{API}/profiles?sort=size", headers=alice.headers)
    bad_status = client.get(f"{API}/profiles?status=evil", headers=alice.headers)

    counts = [p["device_count"] for p in listed["profiles"]]
    assert counts == sorted(counts, reverse=True)
    assert [p["identifier"] for p in suspicious["profiles"]] == [PROXY_ID]
    assert {p["type"] for p in managed["profiles"]} == {"managed"}
    assert (bad.status_code, bad.json()["field"]) == (422, "sort")
    assert (bad_status.status_code, bad_status.json()["field"]) == (422, "status")


def test_a_marked_app_raises_on_carriers_and_later_finds_and_ends_when_it_leaves(
    client, alice, mdm, core
):
    respond_with_label(core, "malicious_app")
    first, second, third = ios_devices(core)[:3]
    carry(mdm, first, apps=[0, 1])
    resync(core)

    # WHEN alice marks the spyware malicious
    response = client.post(
        f"{API}/malicious-apps",
        {"platform": "ios", "identifier": SPYWARE, "reason": "exfiltrates contacts"},
        content_type="application/json",
        headers=alice.headers,
    )
    deliver_all()

    # THEN its one carrier raises the threat and the MDM labels it
    assert response.status_code == 201
    assert response.json()["raised"] == 1
    assert open_events("malicious_app").get().device_id == first.pk
    assert LABEL in labels_of(mdm, first)

    # AND a later sync finding it on another device raises there
    carry(mdm, second, apps=[1])
    resync(core)
    assert open_events("malicious_app").count() == 2

    # WHEN it leaves the first device, that device's threat ends and its label goes
    carry(mdm, first, apps=[0])
    resync(core)
    deliver_all()
    assert list(open_events("malicious_app").values_list("device_id", flat=True)) == [second.pk]
    assert LABEL not in labels_of(mdm, first)

    # WHEN alice unmarks it, the remaining threat ends
    mark = MaliciousApp.objects.get()
    unmarked = client.delete(f"{API}/malicious-apps/{mark.pk}", headers=alice.headers)
    deliver_all()
    assert unmarked.json()["mitigated"] == 1
    assert not open_events("malicious_app").exists()
    assert LABEL not in labels_of(mdm, second)
    assert not MaliciousApp.objects.exists()
    assert AuditEntry.objects.filter(action__contains="malicious").count() == 2
    assert third.threat_events.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"platform": "windows", "identifier": SPYWARE}, "platform"),
        ({"platform": "ios", "identifier": ""}, "identifier"),
        ({"platform": "ios", "identifier": "x" * 256}, "identifier"),
        ({"platform": "ios", "identifier": "com.evil\x1b[2J"}, "identifier"),
        ({"platform": "ios", "identifier": ["com.evil"]}, "identifier"),
        ({"platform": "ios", "identifier": SPYWARE, "reason": "r" * 501}, "reason"),
        ({"platform": "ios", "identifier": SPYWARE, "owner": "x"}, "owner"),
    ],
)
def test_a_bad_mark_names_the_field_and_stores_nothing(client, alice, core, body, field):
    response = client.post(
        f"{API}/malicious-apps", body, content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not MaliciousApp.objects.exists()
    assert not AuditEntry.objects.filter(action__contains="malicious").exists()


def test_the_command_line_lists_decides_marks_and_unmarks(core, mdm, proxy_on_two):
    proxy = proxy_on_two[0]
    runner = CliRunner()

    listed = runner.invoke(main, ["profiles", "list", "--status", "suspicious"])
    distrusted = runner.invoke(main, ["profiles", "distrust", str(proxy.pk)])
    unknown = runner.invoke(main, ["profiles", "trust", "999999"])
    marked = runner.invoke(main, ["apps", "mark", "android", SPYWARE, "--json"])
    shown = runner.invoke(main, ["apps", "malicious"])
    unmarked = runner.invoke(main, ["apps", "unmark", "android", SPYWARE])
    again = runner.invoke(main, ["apps", "unmark", "android", SPYWARE])

    assert listed.exit_code == 0 and PROXY_ID in listed.output
    assert "\x1b" not in listed.output
    assert distrusted.exit_code == 0
    assert Profile.objects.get(pk=proxy.pk).status == Profile.UNTRUSTED
    assert unknown.exit_code != 0 and "no profile" in unknown.output
    assert marked.exit_code == 0 and '"raised": 1' in marked.output
    assert SPYWARE in shown.output and "1 devices" in shown.output
    assert unmarked.exit_code == 0 and "1 threats mitigated" in unmarked.output
    assert again.exit_code != 0
    assert AuditEntry.objects.filter(actor="cli").count() == 3


def test_a_thousand_devices_share_one_profile_and_one_app_without_a_query_each(
    tenant, make_mdm, django_assert_max_num_queries
):
    # GIVEN 1,000 protected iPhones that all carry the proxy certificate and the spyware
    handle = make_mdm(ios=1000, profiles=(0, 1), apps=(0, 1))
    integration = add_integration(tenant, handle, "core", ["Executives"])
    resync(integration)
    activate_all(integration)
    for device in ios_devices(integration):
        check_in(handle, device)

    # WHEN a sync fetches every device's inventory again
    with django_assert_max_num_queries(120):
        resync(integration)

    # THEN one profile object and 1,000 suspicious-profile threats
    assert Profile.objects.filter(identifier=PROXY_ID).count() == 1
    assert open_events("suspicious_profile").count() == 1000

    # AND marking the app and distrusting the profile raise 1,000 threats each, in bulk
    with django_assert_max_num_queries(40):
        mark, raised = mark_app_malicious(tenant, "ios", SPYWARE, "alice")
    assert raised == 1000
    assert DeviceApp.objects.filter(app__identifier=SPYWARE, app__platform="ios").count() == 1000
    with django_assert_max_num_queries(40):
        distrust_profile(tenant, Profile.objects.get(identifier=PROXY_ID).pk, "alice")
    assert open_events("untrusted_profile").count() == 1000
    assert not open_events("suspicious_profile").exists()
    assert Device.objects.filter(integration=integration, state=Device.ACTIVE).count() == 1001
