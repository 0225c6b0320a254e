"""Settings → Activation: the re-activation check, the email template, the email log and
the re-activations waiting for a decision."""

import pytest
from django.urls import reverse
from django.utils import timezone

from bastion.activation.models import (
    DEFAULT_EMAIL_HTML,
    DEFAULT_EMAIL_SUBJECT,
    ActivationEmail,
    ActivationSettings,
    ReactivationRequest,
)
from bastion.inventory.models import Device
from bastion.tenancy.models import AuditEntry, Tenant
from tests.console.conftest import make_devices, signed_in

GOOD = {
    "require_reactivation_approval": "",
    "email_subject": "Protect your {{ platform }} device",
    "email_html": '<p>Tap <a href="{{ link }}">here</a>.</p>',
}


@pytest.fixture
def url():
    return reverse("console:activation_settings")


def stored(tenant) -> ActivationSettings:
    return ActivationSettings.for_tenant(tenant)


def held(tenant, device, method="link") -> ReactivationRequest:
    return ReactivationRequest.objects.create(
        tenant=tenant,
        device=device,
        method=method,
        agent_kind=Device.AGENT_STANDALONE,
        pickup_hash="0" * 64,
    )


def test_the_page_is_under_settings_in_the_navigation(admin_client, url):
    response = admin_client.get(url)

    assert response.status_code == 200
    assert f'href="{url}" aria-current="page"' in response.content.decode()
    assert response.context["form"]["email_subject"].value() == DEFAULT_EMAIL_SUBJECT


def test_an_administrator_changes_the_settings(admin_client, tenant, url):
    response = admin_client.post(url, GOOD)

    assert response.status_code == 302
    row = stored(tenant)
    assert row.require_reactivation_approval is False
    assert (row.email_subject, row.email_html) == (GOOD["email_subject"], GOOD["email_html"])
    entry = AuditEntry.objects.get(action="activation.settings_changed")
    assert (entry.actor, entry.tenant_id) == ("alice", tenant.pk)


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"email_html": "<p>no link here</p>"}, "email_html", "must contain {{ link }}"),
        ({"email_html": "{% if %}{{ link }}"}, "email_html", ""),
        ({"email_subject": "{% load nothing %}"}, "email_subject", ""),
        ({"email_subject": "s" * 201}, "email_subject", ""),
        ({"email_subject": "   "}, "email_subject", ""),
    ],
)
def test_a_bad_template_is_refused_and_nothing_changes(
    admin_client, tenant, url, change, field, message
):
    response = admin_client.post(url, {**GOOD, **change})

    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert message in " ".join(response.context["form"].errors[field])
    row = stored(tenant)
    assert (row.email_subject, row.email_html) == (DEFAULT_EMAIL_SUBJECT, DEFAULT_EMAIL_HTML)
    assert row.require_reactivation_approval is True
    assert not AuditEntry.objects.filter(action="activation.settings_changed").exists()


def test_an_anonymous_tenant_says_why_emails_are_off(admin_client, tenant, url):
    Tenant.objects.filter(pk=tenant.pk).update(anonymous_users=True)

    page = admin_client.get(url)
    response = admin_client.post(url, {**GOOD, "require_reactivation_approval": "on"})

    assert "Activation emails are off" in page.content.decode()
    assert "anonymous users" in page.content.decode()
    assert page.context["form"].fields["email_html"].disabled
    assert response.status_code == 302
    row = stored(tenant)
    assert row.email_subject == DEFAULT_EMAIL_SUBJECT
    assert row.require_reactivation_approval is True


def test_a_read_only_administrator_sees_but_cannot_change(read_only_client, tenant, url):
    page = read_only_client.get(url)
    response = read_only_client.post(url, GOOD)

    assert page.status_code == 200
    assert "<fieldset disabled>" in page.content.decode()
    assert ">Save<" not in page.content.decode()
    assert response.status_code == 403
    assert stored(tenant).email_subject == DEFAULT_EMAIL_SUBJECT
    assert not AuditEntry.objects.filter(action="activation.settings_changed").exists()


# The email log.


def email(tenant, device, recipient, status=ActivationEmail.SENT, **extra):
    return ActivationEmail.objects.create(
        tenant=tenant, device=device, recipient=recipient, status=status, **extra
    )


def test_the_email_log_shows_what_was_sent_and_what_failed(admin_client, tenant, url):
    sent, failed = make_devices(tenant, 2)
    email(tenant, sent, "pat@example.com", sent_at=timezone.now(), attempts=1)
    email(tenant, failed, "kim@example.com", ActivationEmail.FAILED, attempts=5,
          last_error="SMTP said 550 <mailbox unavailable>")  # fmt: skip

    page = admin_client.get(url).content.decode()
    only_failed = admin_client.get(url + "?status=failed")

    assert "pat@example.com" in page and "kim@example.com" in page
    assert "SMTP said 550 &lt;mailbox unavailable&gt;" in page
    assert [row["recipient"] for row in only_failed.context["page"]] == ["kim@example.com"]


def test_a_masked_users_address_is_masked_in_the_log(admin_client, tenant, url):
    (device,) = make_devices(tenant, 1)
    device.user.masked = True
    device.user.save()
    email(tenant, device, "secret.person@example.com")

    page = admin_client.get(url).content.decode()

    assert "secret.person" not in page
    assert "s***" in page


def test_a_bad_log_filter_is_refused_naming_it(admin_client, tenant, url):
    (device,) = make_devices(tenant, 1)
    email(tenant, device, "pat@example.com")

    response = admin_client.get(url + "?status=everything")

    assert response.status_code == 400
    assert "status: choose" in response.content.decode()


def test_the_email_log_is_paged(admin_client, tenant, url):
    for device in make_devices(tenant, 55):
        email(tenant, device, f"{device.mdm_id}@example.com")

    second = admin_client.get(url + "?page=2")

    assert second.context["page"].paginator.count == 55
    assert len(list(second.context["page"])) == 5


def test_another_tenants_emails_and_requests_stay_hidden(
    client, mallory, other_tenant, tenant, url
):
    (device,) = make_devices(tenant, 1)
    email(tenant, device, "pat@example.com")
    held(tenant, device)
    signed_in(client, mallory, other_tenant)

    page = client.get(url)

    assert "pat@example.com" not in page.content.decode()
    assert page.context["requests"] == []
    assert page.context["page"].paginator.count == 0


# Re-activations waiting for a decision.


def test_pending_reactivations_are_listed_with_approve_and_refuse(admin_client, tenant, url):
    first, second = make_devices(tenant, 2)
    waiting = held(tenant, first)
    decided = held(tenant, second)
    ReactivationRequest.objects.filter(pk=decided.pk).update(status=ReactivationRequest.REJECTED)

    page = admin_client.get(url).content.decode()

    decide = reverse("console:activation_decide", args=[waiting.pk])
    assert page.count(f'action="{decide}"') == 2
    assert 'value="approve"' in page and 'value="reject"' in page
    assert reverse("console:activation_decide", args=[decided.pk]) not in page
    assert first.mdm_id in page


def test_approving_from_the_page_goes_through_the_existing_route(admin_client, tenant, url):
    (device,) = make_devices(tenant, 1)
    waiting = held(tenant, device)

    response = admin_client.post(
        reverse("console:activation_decide", args=[waiting.pk]), {"decision": "approve"}
    )

    waiting.refresh_from_db()
    assert response.status_code == 302
    assert (waiting.status, waiting.decided_by) == (ReactivationRequest.APPROVED, "alice")
    assert reverse("console:activation_decide", args=[waiting.pk]) not in (
        admin_client.get(url).content.decode()
    )


def test_read_only_sees_requests_without_buttons(read_only_client, tenant, url):
    (device,) = make_devices(tenant, 1)
    waiting = held(tenant, device)

    page = read_only_client.get(url).content.decode()
    response = read_only_client.post(
        reverse("console:activation_decide", args=[waiting.pk]), {"decision": "approve"}
    )

    assert device.mdm_id in page
    assert reverse("console:activation_decide", args=[waiting.pk]) not in page
    assert response.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == ReactivationRequest.PENDING
