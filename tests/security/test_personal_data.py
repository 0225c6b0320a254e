"""Personal data: masked users stay masked in pages, API answers and emails to
administrators; an anonymous tenant stores no email; logs carry no names or emails."""

import logging

import pytest
from django.utils import timezone

from bastion.inventory.models import Device, DeviceUser
from bastion.tenancy.models import Membership
from bastion.tenancy.services import create_administrator, create_tenant
from bastion.threats.models import AdminNotice, ThreatEvent
from bastion.threats.notify import compose
from tests.conftest import CORE_LABELS, add_integration, sync
from tests.security.conftest import bearer
from tests.security.helpers import rows_containing


@pytest.fixture
def masked(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS, mask_users=True)
    run = sync(integration)
    assert run.status == "done", run.error
    return integration


def full_identities(emulator) -> list[str]:
    values = []
    for user in emulator.fleet.users:
        values += [user.email, f"{user.first_name} {user.last_name}"]
    return [value for value in values if value and len(value) > 4]


def test_masked_users_are_masked_on_every_page(client, masked, tenant, emulator):
    admin = create_administrator(tenant, "alice-pd", "correct horse battery 9", Membership.ADMIN)
    client.force_login(admin)
    device = Device.objects.filter(integration=masked, user__isnull=False).first()
    identities = full_identities(emulator)

    for page in ("/users", "/devices", f"/devices/{device.pk}"):
        html = client.get(page).content.decode()

        assert "***" in html, f"{page} shows no masked user"
        leaked = [value for value in identities if value in html]
        assert leaked == [], f"{page} shows {leaked[:3]}"


def test_masked_users_are_masked_in_the_admin_api_and_admin_emails(
    client, masked, tenant, emulator
):
    from bastion.api.models import AdminToken

    admin = create_administrator(tenant, "alice-pd", "correct horse battery 9", Membership.ADMIN)
    _, token = AdminToken.issue(admin, tenant)
    device = Device.objects.filter(integration=masked, user__isnull=False).first()
    event = ThreatEvent.objects.create(
        tenant=tenant,
        device=device,
        group=device.group,
        agent_event_id="pd-1",
        threat_id="arp_mitm",
        severity="high",
        detected_at=timezone.now(),
    )
    notice = AdminNotice.objects.create(
        tenant=tenant, event=event, device=device, threat_id="arp_mitm"
    )
    identities = full_identities(emulator)

    answers = [
        client.get(f"/api/admin/v1/threat-events/{event.pk}", headers=bearer(token)).content,
        client.get("/api/admin/v1/threat-events", headers=bearer(token)).content,
    ]
    subject, body = compose(notice)

    assert "***" in body
    for text in [answer.decode() for answer in answers] + [subject, body]:
        assert [value for value in identities if value in text] == []


def test_an_anonymous_tenant_stores_no_email_and_no_name(db, emulator):
    anonymous = create_tenant("Anon Corp", anonymous_users=True)
    integration = add_integration(
        anonymous, emulator, "core", CORE_LABELS, email_ios=True, email_android=True
    )

    run = sync(integration)

    assert run.status == "done", run.error
    users = DeviceUser.objects.filter(tenant=anonymous)
    assert users.exists()
    assert set(users.values_list("email", "first_name", "last_name", "display_name")) == {
        ("", "", "", "")
    }
    integration.refresh_from_db()
    assert not integration.email_ios and not integration.email_android
    for user in emulator.fleet.users[:100]:
        if user.email:
            assert rows_containing(user.email) == [], user.uid


def test_threat_reports_and_activations_log_no_names_or_emails(db, caplog, client, settings):
    from tests.security.world import build_side

    settings.BASTION_DEVICE_RATE_LIMIT = 1000
    side = build_side(create_tenant("Logged Corp"), "acme")
    personal = [side.user.email, side.user.first_name, side.user.last_name, side.device.name]

    with caplog.at_level(logging.DEBUG):
        client.post(
            "/api/device/v1/threats",
            {"event_id": "log-1", "threat_id": "arp_mitm", "detected_at": "2026-01-05T10:00:00Z"},
            content_type="application/json",
            headers=bearer(side.device_token),
        )
        client.post(
            "/api/device/v1/activate",
            {"token": side.link.token, "mdm_id": side.device.mdm_id},
            content_type="application/json",
        )
        client.post("/api/device/v1/reactivate", headers=bearer(side.device_token))
        client.post("/sign-in", {"username": side.user.email, "password": "wrong password 1"})

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for value in personal:
        assert value not in text
