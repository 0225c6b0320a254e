"""Activation emails, sent to a real SMTP server the tests start."""

from datetime import timedelta
from email import message_from_string

from django.utils import timezone

from bastion.activation import emails, services
from bastion.activation.models import ActivationEmail
from bastion.activation.tasks import sweep_pending_emails
from bastion.inventory.models import Device
from bastion.mdm.models import Integration
from bastion.tenancy.services import create_tenant
from tests.activation.conftest import link_token
from tests.conftest import CORE_LABELS, add_integration, sync


def _deliver_all() -> list[str]:
    ids = ActivationEmail.objects.filter(status="pending").values_list("pk", flat=True)
    return [emails.deliver(pk) for pk in ids]


def _html_of(message: dict) -> str:
    parsed = message_from_string(message["data"])
    for part in parsed.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no HTML part")


def test_each_new_ios_device_gets_one_email_with_its_own_link(tenant, emulator, smtp):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS, email_ios=True)

    sync(integration)
    outcomes = _deliver_all()

    ios = Device.objects.filter(integration=integration, platform="ios", user__isnull=False)
    assert ios.exists()
    assert ActivationEmail.objects.count() == ios.exclude(user__email="").count()
    assert set(outcomes) == {emails.Outcome.SENT}
    assert len(smtp.messages) == len(outcomes)
    device = ios.exclude(user__email="").first()
    message = next(m for m in smtp.messages if device.user.email in m["to"])
    html = _html_of(message)
    assert f"token={link_token(integration)}&amp;MDM_ID={device.mdm_id}" in html
    assert not ActivationEmail.objects.filter(device__platform="android").exists()


def test_a_later_sync_sends_nothing_again(tenant, emulator, smtp):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS, email_ios=True)
    sync(integration)
    _deliver_all()
    sent = len(smtp.messages)

    Device.objects.filter(integration=integration).update(state=Device.REMOVED, fingerprint="")
    sync(integration)
    _deliver_all()

    assert sent > 0
    assert len(smtp.messages) == sent
    assert ActivationEmail.objects.filter(status="sent").count() == sent


def test_a_device_that_activated_first_gets_no_email(tenant, emulator, smtp):
    integration = add_integration(tenant, emulator, "cloud", ["Sales Team"], email_android=True)
    sync(integration)
    row = ActivationEmail.objects.first()
    Device.objects.filter(pk=row.device_id).update(state=Device.ACTIVE)

    outcome = emails.deliver(row.pk)

    row.refresh_from_db()
    assert outcome == emails.Outcome.SKIPPED
    assert row.status == "skipped"
    assert not any(row.recipient in m["to"] for m in smtp.messages)


def test_an_smtp_failure_is_recorded_and_retried_then_given_up(tenant, emulator, settings):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS, email_ios=True)
    sync(integration)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    row = ActivationEmail.objects.first()

    first = emails.deliver(row.pk)
    row.refresh_from_db()
    attempts_after_first = row.attempts
    for _ in range(emails.MAX_ATTEMPTS):
        emails.deliver(row.pk)
    row.refresh_from_db()

    assert first == emails.Outcome.RETRY
    assert attempts_after_first == 1
    assert row.status == "failed"
    assert row.attempts == emails.MAX_ATTEMPTS
    assert "Error" in row.last_error
    assert services.email_log(tenant, "failed")[0]["id"] == row.pk


def test_the_sweep_picks_up_emails_whose_task_was_lost(tenant, emulator):
    integration = add_integration(tenant, emulator, "core", CORE_LABELS, email_ios=True)
    sync(integration)
    ActivationEmail.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    pending = ActivationEmail.objects.filter(status="pending").count()

    assert emails.due_for_sweep() and len(emails.due_for_sweep()) == pending
    assert sweep_pending_emails() == pending


def test_an_anonymous_tenant_has_the_email_options_off_and_says_why(db, emulator):
    anonymous = create_tenant("Quiet Corp", anonymous_users=True)

    integration = add_integration(anonymous, emulator, "core", CORE_LABELS, email_ios=True)
    sync(integration)

    available, reason = emails.options_status(integration)
    assert Integration.objects.get(pk=integration.pk).email_ios is False
    assert not available
    assert "anonymous" in reason
    assert not ActivationEmail.objects.exists()


def test_the_tenant_edits_its_template(tenant, emulator, smtp):
    services.update_settings(
        tenant,
        "alice",
        email_subject="Protect your {{ platform }}",
        email_html="<p>Hello! <a href='{{ link }}'>Go</a> {{ device_name }}</p>",
    )
    integration = add_integration(tenant, emulator, "core", CORE_LABELS, email_ios=True)
    sync(integration)

    _deliver_all()

    assert smtp.messages
    assert "Subject: Protect your iOS" in smtp.messages[0]["data"]
    assert "Hello!" in _html_of(smtp.messages[0])


def test_a_broken_template_is_refused_and_the_old_one_kept(tenant):
    before = services.settings_view(tenant)

    for html, field in [("{% if %}", "email_html"), ("<p>no link</p>", "email_html")]:
        try:
            services.update_settings(tenant, "alice", email_html=html)
        except ValueError as error:
            assert str(error).startswith(f"{field}:")
        else:
            raise AssertionError("accepted a broken template")

    assert services.settings_view(tenant) == before
