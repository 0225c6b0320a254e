"""MobileIron Cloud: custom attributes and the built-in Lock, through the emulator."""

import httpx
import pytest

from bastion.mdm.services import InvalidInput
from bastion.threats import engine
from bastion.threats.matrix import matrix_for, set_row
from bastion.threats.models import ResponseAction
from tests.threats.conftest import cloud_state, deliver_all, mitigate, report, respond, target


def test_a_threat_sets_the_attribute_and_keeps_the_others(client, emulator, synced_cloud, carl):
    httpx.post(
        f"{emulator.url}/_emulator/fleet/cloud/devices/{carl.mdm_id}",
        json={"attrs": {"costCenter": ["CC-1010"]}},
    )
    respond(
        carl.group,
        "arp_mitm",
        mdm_action=target(synced_cloud, "MTD Threat Detected").pk,
        mitigation="remove",
    )

    report(client, carl, "arp_mitm", "ev-1")
    deliver_all()

    attrs = cloud_state(emulator, carl)["attrs"]
    assert attrs == {"costCenter": ["CC-1010"], "MTDThreat": ["1"]}


def test_mitigation_writes_zero_never_an_empty_value(client, emulator, synced_cloud, carl):
    respond(
        carl.group,
        "arp_mitm",
        mdm_action=target(synced_cloud, "MTD Threat Detected").pk,
        mitigation="remove",
    )
    report(client, carl, "arp_mitm", "ev-1")
    deliver_all()

    mitigate(client, carl, "ev-1")
    deliver_all()

    assert cloud_state(emulator, carl)["attrs"]["MTDThreat"] == ["0"]


def test_two_attributes_on_one_device_both_survive(client, emulator, synced_cloud, carl):
    respond(carl.group, "arp_mitm", mdm_action=target(synced_cloud, "MTD Threat Detected").pk)
    respond(carl.group, "ssl_strip", mdm_action=target(synced_cloud, "MTD Quarantine").pk)

    report(client, carl, "arp_mitm", "ev-1")
    report(client, carl, "ssl_strip", "ev-2")
    deliver_all()

    attrs = cloud_state(emulator, carl)["attrs"]
    assert attrs["MTDThreat"] == ["1"] and attrs["MTDQuarantine"] == ["1"]


def test_writes_to_one_device_are_serialised(client, synced_cloud, carl):
    respond(carl.group, "arp_mitm", mdm_action=target(synced_cloud, "MTD Threat Detected").pk)
    respond(carl.group, "ssl_strip", mdm_action=target(synced_cloud, "MTD Quarantine").pk)
    report(client, carl, "arp_mitm", "ev-1")
    report(client, carl, "ssl_strip", "ev-2")
    first, second = ResponseAction.objects.order_by("pk")

    claimed, _ = engine.claim(first.pk)
    blocked, _ = engine.claim(second.pk)

    assert (claimed, blocked) == ("claimed", "busy")


def test_lock_locks_the_device_and_mitigation_leaves_it_locked(
    client, emulator, synced_cloud, carl
):
    respond(carl.group, "device_rooted", mdm_action=target(synced_cloud, "Lock").pk)
    respond(carl.group, "device_jailbroken", mdm_action=target(synced_cloud, "Lock").pk)
    threat = "device_rooted" if carl.platform == "android" else "device_jailbroken"

    report(client, carl, threat, "ev-1")
    deliver_all()
    mitigate(client, carl, "ev-1")
    deliver_all()

    assert cloud_state(emulator, carl)["locked"] is True
    assert not ResponseAction.objects.filter(op=ResponseAction.UNDO).exists()


def test_lock_cannot_be_set_to_be_removed(synced_cloud, carl):
    with pytest.raises(InvalidInput) as error:
        set_row(
            matrix_for(carl.group),
            "arp_mitm",
            {"mdm_action": target(synced_cloud, "Lock").pk, "mitigation": "remove"},
        )

    assert error.value.field == "mitigation"
