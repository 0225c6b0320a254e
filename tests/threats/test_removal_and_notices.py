"""Devices leaving the inventory or their group, and emails to administrators."""

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from bastion.inventory.models import ConsoleGroup, Device
from bastion.inventory.signals import devices_moved
from bastion.mdm.sync import devices_removed
from bastion.threats import notify
from bastion.threats.models import AdminNotice, ResponseAction, ThreatEvent
from bastion.threats.services import settle_device_actions
from tests.threats.conftest import core_labels, deliver_all, report, respond, target

QUARANTINE = "MTD-Quarantine"


def _quarantined(client, synced_core, device, event_id="ev-1"):
    respond(
        device.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk, mitigation="remove"
    )
    report(client, device, "arp_mitm", event_id)
    deliver_all()


def _tombstone(device):
    Device.objects.filter(pk=device.pk).update(state=Device.REMOVED, removed_at=timezone.now())
    devices_removed([device.pk])


def test_removal_undoes_applied_labels_when_the_integration_says_so(
    client, emulator, synced_core, iris
):
    synced_core.undo_actions_on_removal = True
    synced_core.save(update_fields=["undo_actions_on_removal"])
    _quarantined(client, synced_core, iris)

    _tombstone(iris)
    deliver_all()

    assert QUARANTINE not in core_labels(emulator, iris)
    assert ThreatEvent.objects.filter(device=iris).count() == 1


def test_removal_leaves_applied_labels_by_default(client, emulator, synced_core, iris):
    _quarantined(client, synced_core, iris)

    _tombstone(iris)
    deliver_all()

    assert QUARANTINE in core_labels(emulator, iris)
    assert ResponseAction.objects.get().settled


def test_removal_cancels_pending_actions(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, QUARANTINE).pk)
    report(client, iris, "arp_mitm", "ev-1")

    _tombstone(iris)
    deliver_all()

    assert ResponseAction.objects.get().state == ResponseAction.CANCELLED
    assert QUARANTINE not in core_labels(emulator, iris)


def test_a_device_moved_to_another_group_is_settled(client, emulator, synced_core, iris):
    synced_core.undo_actions_on_removal = True
    synced_core.save(update_fields=["undo_actions_on_removal"])
    _quarantined(client, synced_core, iris)
    new_group = synced_core.groups.exclude(pk=iris.group_id).first()

    devices_moved.send(sender=Device, moves=[(iris.pk, iris.group_id, new_group.pk)])
    deliver_all()

    assert QUARANTINE not in core_labels(emulator, iris)
    assert ThreatEvent.objects.get().state == ThreatEvent.ACTIVE


def test_settling_before_an_integration_is_removed_delivers_at_once(
    client, emulator, synced_core, iris
):
    _quarantined(client, synced_core, iris)

    undos = settle_device_actions([iris.pk], undo=True, deliver_now=True)

    assert len(undos) == 1
    assert ResponseAction.objects.get(pk=undos[0]).state == ResponseAction.DONE
    assert QUARANTINE not in core_labels(emulator, iris)


def test_administrators_are_emailed_once_per_device_and_threat(client, alice, synced_core, iris):
    respond(iris.group, "arp_mitm", notify_admin=True)

    report(client, iris, "arp_mitm", "ev-1")
    report(client, iris, "arp_mitm", "ev-2")
    for notice in AdminNotice.objects.all():
        notify.send_notice(notice.pk)

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@acme.example"]
    assert "MITM - ARP" in mail.outbox[0].subject


def test_a_new_window_brings_a_new_email(client, alice, synced_core, iris):
    respond(iris.group, "arp_mitm", notify_admin=True)
    report(client, iris, "arp_mitm", "ev-1")
    AdminNotice.objects.update(created_at=timezone.now() - timedelta(days=1))

    report(client, iris, "arp_mitm", "ev-2")

    assert AdminNotice.objects.count() == 2


def test_emails_never_show_a_masked_users_name_or_email(client, alice, synced_core, iris):
    user = iris.user
    user.masked = True
    user.email, user.display_name = "iris.adler@acme.example", "Iris Adler"
    user.save()
    respond(iris.group, "arp_mitm", notify_admin=True)

    report(client, iris, "arp_mitm", "ev-1")
    notify.send_notice(AdminNotice.objects.get().pk)

    body = mail.outbox[0].body
    assert "iris.adler" not in body and "Adler" not in body
    assert "i***" in body


def test_a_default_group_device_has_no_mdm_action(client, tenant, synced_core, iris):
    iris.group = ConsoleGroup.default_for(tenant)
    iris.save(update_fields=["group"])

    answer = report(client, iris, "arp_mitm", "ev-1")

    assert answer.status_code == 200 and not ResponseAction.objects.exists()
