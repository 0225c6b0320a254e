"""iOS profiles through the sync: qualified once, raised once per device, mitigated when
they leave, and left alone by a fetch that did not complete."""

import httpx

from bastion.inventory.models import DeviceProfile, Profile
from bastion.threats.inventory_events import event_id
from bastion.threats.models import ResponseAction, ThreatEvent
from tests.conftest import add_integration, sync
from tests.inventory_threats.conftest import (
    LABEL,
    PROXY_ID,
    PROXY_NAME,
    activate_all,
    carry,
    check_in,
    deliver_all,
    ios_devices,
    labels_of,
    mdm_device,
    respond_with_label,
    resync,
)


def profile(identifier: str) -> Profile:
    return Profile.objects.get(identifier=identifier)


def active(threat_id: str, device=None):
    events = ThreatEvent.objects.filter(threat_id=threat_id, state=ThreatEvent.ACTIVE)
    return events.filter(device=device) if device else events


def test_a_first_sync_qualifies_profiles_by_who_installed_them(emulator, synced_core):
    # GIVEN the generated fleet, where some iPhones carry user-installed profiles
    profiles = Profile.objects.filter(tenant=synced_core.tenant)
    assert not ThreatEvent.objects.exists()  # no agent is active yet

    # WHEN the agents are active and the devices have checked in again
    activate_all(synced_core)
    for device in ios_devices(synced_core):
        check_in(emulator, device)
    resync(synced_core)

    # THEN managed ones are trusted, the others suspicious
    assert profiles.filter(managed=True).exists()
    assert profiles.filter(managed=False).exists()
    assert not profiles.filter(managed=True).exclude(status=Profile.TRUSTED).exists()
    assert not profiles.filter(managed=False).exclude(status=Profile.SUSPICIOUS).exists()

    # AND every device carrying a suspicious profile has exactly one threat for it
    carriers = DeviceProfile.objects.filter(profile__status=Profile.SUSPICIOUS)
    events = ThreatEvent.objects.filter(threat_id="suspicious_profile")
    assert events.count() == carriers.count() > 0
    for link in carriers:
        expected = event_id("p", link.profile_id, "suspicious_profile")
        assert events.filter(device_id=link.device_id, agent_event_id=expected).exists()


def test_a_user_installed_profile_raises_through_the_matrix_and_its_removal_mitigates(core, mdm):
    # GIVEN the matrix answers suspicious profiles with a label, removed on mitigation
    respond_with_label(core, "suspicious_profile")
    iphone = ios_devices(core)[0]

    # WHEN a sync finds a proxy certificate the user installed
    carry(mdm, iphone, profiles=[0, 1])
    resync(core)
    deliver_all()

    # THEN the device raises one suspicious-profile threat and the MDM got the label
    proxy = profile(PROXY_ID)
    assert (proxy.status, proxy.managed, proxy.name) == (Profile.SUSPICIOUS, False, PROXY_NAME)
    event = active("suspicious_profile", iphone).get()
    assert event.details["profile_id"] == proxy.pk
    assert LABEL in labels_of(mdm, iphone)

    # WHEN the next syncs still find it, nothing new is raised
    check_in(mdm, iphone)
    resync(core)
    resync(core)
    assert ThreatEvent.objects.filter(device=iphone).count() == 1

    # WHEN the user removes it
    carry(mdm, iphone, profiles=[0])
    resync(core)
    deliver_all()

    # THEN the threat is mitigated and the label removed from the device in the MDM
    event.refresh_from_db()
    assert event.state == ThreatEvent.MITIGATED
    assert LABEL not in labels_of(mdm, iphone)
    # AND the profile keeps its status: it is still suspicious for the next device
    assert profile(PROXY_ID).status == Profile.SUSPICIOUS


def test_a_profile_installed_again_raises_again(core, mdm):
    iphone = ios_devices(core)[0]
    carry(mdm, iphone, profiles=[1])
    resync(core)
    carry(mdm, iphone, profiles=[])
    resync(core)

    carry(mdm, iphone, profiles=[1])
    resync(core)

    events = ThreatEvent.objects.filter(device=iphone, threat_id="suspicious_profile")
    assert events.count() == 2
    assert events.filter(state=ThreatEvent.ACTIVE).count() == 1


def test_the_same_identifier_with_two_names_is_one_profile(core, mdm):
    first, second = ios_devices(core)[:2]

    carry(mdm, first, profiles=[1])
    carry(mdm, second, profiles=[2])
    resync(core)

    proxies = Profile.objects.filter(identifier=PROXY_ID)
    assert proxies.count() == 1
    assert proxies.get().installations.count() == 2
    assert active("suspicious_profile").count() == 2


def test_a_profile_that_the_mdm_now_installs_becomes_trusted_and_its_threats_end(core, mdm):
    # GIVEN a user-installed profile answered with a label on two devices
    respond_with_label(core, "suspicious_profile")
    first, second = ios_devices(core)[:2]
    carry(mdm, first, profiles=[3])
    carry(mdm, second, profiles=[3])
    resync(core)
    deliver_all()
    assert LABEL in labels_of(mdm, first)

    # WHEN the MDM pushes the same profile itself (reported managed) on one device
    mdm.fleet.profiles[3].managed = True
    check_in(mdm, first)
    resync(core)
    deliver_all()

    # THEN it is managed and trusted, and both devices' threats are mitigated
    nextdns = profile("com.nextdns.profile")
    assert (nextdns.managed, nextdns.status) == (True, Profile.TRUSTED)
    assert not active("suspicious_profile").exists()
    assert LABEL not in labels_of(mdm, first)
    assert LABEL not in labels_of(mdm, second)


def test_an_administrators_distrust_survives_the_profile_becoming_managed(core, mdm, tenant):
    from bastion.threats.inventory import distrust_profile

    iphone = ios_devices(core)[0]
    carry(mdm, iphone, profiles=[3])
    resync(core)
    distrust_profile(tenant, profile("com.nextdns.profile").pk, "alice")

    mdm.fleet.profiles[3].managed = True
    check_in(mdm, iphone)
    resync(core)

    nextdns = profile("com.nextdns.profile")
    assert (nextdns.managed, nextdns.status) == (True, Profile.UNTRUSTED)
    assert active("untrusted_profile", iphone).count() == 1


def test_a_failed_profile_fetch_changes_and_mitigates_nothing(core, mdm):
    iphone = ios_devices(core)[0]
    carry(mdm, iphone, profiles=[1])
    resync(core)
    event = active("suspicious_profile", iphone).get()

    # WHEN the profile is gone but the profile inventory call fails
    httpx.post(
        f"{mdm.url}/_emulator/faults",
        json={"kind": "error", "status": 500, "path": "/msa/v1/cps/device/profile"},
    )
    carry(mdm, iphone, profiles=[0])
    run = resync(core)

    # THEN the sync still completes, says why, and the profile and threat are untouched
    assert any("profiles not fetched" in message for message in run.messages)
    assert DeviceProfile.objects.filter(device=iphone, profile__identifier=PROXY_ID).exists()
    event.refresh_from_db()
    assert event.state == ThreatEvent.ACTIVE


def test_profiles_unavailable_is_shown_and_changes_nothing(core, mdm):
    iphone = ios_devices(core)[0]
    carry(mdm, iphone, profiles=[1])
    resync(core)

    mdm.fleet.core.cps = False
    carry(mdm, iphone, profiles=[0])
    resync(core)

    core.refresh_from_db()
    assert "profiles unavailable" in core.profiles_unavailable
    assert active("suspicious_profile", iphone).count() == 1


def test_a_partial_profile_fetch_changes_and_mitigates_nothing(tenant, make_mdm):
    # GIVEN 60 iPhones (two profile calls of 50) that all carry the proxy certificate
    handle = make_mdm(ios=60, profiles=(0, 1))
    integration = add_integration(tenant, handle, "core", ["Executives"])
    resync(integration)
    activate_all(integration)
    for device in ios_devices(integration):
        check_in(handle, device)
    resync(integration)
    assert active("suspicious_profile").count() == 60

    # WHEN they all remove it, but the second profile call fails
    for device in ios_devices(integration):
        carry(handle, device, profiles=[0])
    httpx.post(
        f"{handle.url}/_emulator/faults",
        json={"kind": "error", "status": 500, "path": "/msa/v1/cps/device/profile", "after": 1},
    )
    sync(integration)

    # THEN no device lost its profile and no threat was mitigated
    assert DeviceProfile.objects.filter(profile__identifier=PROXY_ID).count() == 60
    assert active("suspicious_profile").count() == 60


def test_a_device_the_profile_answer_leaves_out_keeps_its_profiles(core, mdm):
    iphone = ios_devices(core)[0]
    carry(mdm, iphone, profiles=[1])
    resync(core)

    # The MDM stops answering for this UDID (it reports only devices it knows by it).
    mdm_device(mdm, iphone).udid = "00008110-FFFFFFFFFFFFFFFF"
    check_in(mdm, iphone)
    resync(core)

    assert DeviceProfile.objects.filter(device=iphone, profile__identifier=PROXY_ID).exists()
    assert active("suspicious_profile", iphone).count() == 1


def test_a_disabled_row_records_the_threat_without_an_mdm_call(core, mdm):
    from bastion.threats.matrix import deploy, matrix_for, set_row

    iphone = ios_devices(core)[0]
    matrix = matrix_for(iphone.group)
    set_row(matrix, "suspicious_profile", {"enabled": False})
    deploy(matrix, "alice")

    carry(mdm, iphone, profiles=[1])
    resync(core)

    event = ThreatEvent.objects.get(device=iphone)
    assert event.ignored
    assert not ResponseAction.objects.filter(event=event).exists()


def test_a_device_waiting_for_its_agent_raises_once_it_is_protected(tenant, make_mdm):
    from bastion.inventory.models import Device
    from bastion.threats.inventory import raise_for_devices

    # GIVEN a device that carries the proxy certificate but has not activated
    handle = make_mdm(ios=1, profiles=(1,))
    integration = add_integration(tenant, handle, "core", ["Executives"])
    resync(integration)
    iphone = ios_devices(integration)[0]
    assert DeviceProfile.objects.filter(device=iphone).exists()
    assert not ThreatEvent.objects.exists()

    # WHEN its agent activates, the stored inventory raises at once, and only once
    Device.objects.filter(pk=iphone.pk).update(state=Device.ACTIVE)
    assert raise_for_devices(tenant.pk, [iphone.pk]) == 1
    assert raise_for_devices(tenant.pk, [iphone.pk]) == 0
    check_in(handle, iphone)
    resync(integration)

    assert active("suspicious_profile", iphone).count() == 1
