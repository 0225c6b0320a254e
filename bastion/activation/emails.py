"""Activation emails: one per device a sync adds, stored first, then sent by a worker."""

import logging
from datetime import timedelta

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.dispatch import receiver
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone
from django.utils.html import strip_tags

from bastion.activation import tokens
from bastion.activation.models import ActivationEmail, ActivationSettings, ActivationToken
from bastion.inventory.models import Device
from bastion.inventory.signals import devices_added
from bastion.mdm.models import Integration

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def options_status(integration: Integration) -> tuple[bool, str]:
    """Whether the email options can be turned on, and why not when they can't."""
    if integration.tenant.anonymous_users:
        return False, (
            "this tenant keeps no email addresses (anonymous users), so activation emails "
            "can't be sent"
        )
    return True, ""


@receiver(devices_added, dispatch_uid="activation.queue_emails")
def queue_emails(sender, integration: Integration, device_ids, **kwargs) -> None:
    """Stores an email row per new device whose platform the integration emails about."""
    platforms = []
    if integration.email_ios:
        platforms.append(Device.IOS)
    if integration.email_android:
        platforms.append(Device.ANDROID)
    if not platforms or integration.tenant.anonymous_users:
        return

    devices = (
        Device.objects.filter(
            tenant_id=integration.tenant_id,
            pk__in=device_ids,
            platform__in=platforms,
            state=Device.WAITING,
            user__isnull=False,
        )
        .exclude(user__email="")
        .values_list("pk", "user__email")
    )
    rows = [
        ActivationEmail(
            tenant_id=integration.tenant_id,
            integration=integration,
            device_id=pk,
            recipient=email[:254],
        )
        for pk, email in devices
    ]
    if not rows:
        return
    # A device that already had its email (it left and came back) gets none again.
    ActivationEmail.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    ids = list(
        ActivationEmail.objects.filter(
            device_id__in=[row.device_id for row in rows], status=ActivationEmail.PENDING
        ).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: _enqueue(ids))


def _enqueue(ids: list[int]) -> None:
    from bastion.activation.tasks import send_activation_email

    for email_id in ids:
        try:
            send_activation_email.delay(email_id)
        except Exception:
            # The row is stored; the sweep sends it once the broker is back.
            log.warning("activation email not enqueued email=%s", email_id)


def render(settings_row: ActivationSettings, context: dict) -> tuple[str, str]:
    """(subject, html) from the tenant's templates; raises ValueError naming the field."""
    try:
        subject = Template(settings_row.email_subject).render(Context(context, autoescape=False))
    except TemplateSyntaxError as error:
        raise ValueError(f"email_subject: {error}") from None
    try:
        html = Template(settings_row.email_html).render(Context(context))
    except TemplateSyntaxError as error:
        raise ValueError(f"email_html: {error}") from None
    return " ".join(subject.split())[:200], html


def validate_templates(subject: str, html: str) -> None:
    probe = ActivationSettings(email_subject=subject, email_html=html)
    render(probe, {"link": "", "platform": "", "device_name": "", "tenant": ""})
    if not subject.strip():
        raise ValueError("email_subject: enter a subject")
    if "{{ link }}" not in html and "{{link}}" not in html:
        raise ValueError("email_html: the template must contain {{ link }}")


class Outcome:
    SENT = "sent"
    SKIPPED = "skipped"
    NOTHING = "nothing"
    RETRY = "retry"
    FAILED = "failed"


def deliver(email_id: int) -> str:
    """Sends one stored email. Idempotent: a sent or skipped row is left alone.

    Returns an Outcome; RETRY means a transient failure was recorded on the row.
    """
    email = (
        ActivationEmail.objects.select_related("device", "device__group", "integration", "tenant")
        .filter(pk=email_id)
        .first()
    )
    if email is None or email.status != ActivationEmail.PENDING:
        return Outcome.NOTHING

    device = email.device
    reason = _skip_reason(email)
    if reason:
        ActivationEmail.objects.filter(pk=email.pk, status=ActivationEmail.PENDING).update(
            status=ActivationEmail.SKIPPED, last_error=reason
        )
        return Outcome.SKIPPED

    link = tokens.device_link(email.integration, _usable_link(email.integration), device.mdm_id)
    settings_row = ActivationSettings.for_tenant(email.tenant)
    context = {
        "link": link,
        "platform": device.get_platform_display(),
        "device_name": device.name or device.model,
        "tenant": email.tenant.name,
    }
    now = timezone.now()
    try:
        subject, html = render(settings_row, context)
        message = EmailMultiAlternatives(subject, strip_tags(html), to=[email.recipient])
        message.attach_alternative(html, "text/html")
        message.send()
    except (OSError, ValueError) as error:
        return _record_failure(email, error, now)

    ActivationEmail.objects.filter(pk=email.pk).update(
        status=ActivationEmail.SENT,
        sent_at=now,
        last_attempt_at=now,
        attempts=email.attempts + 1,
        last_error="",
    )
    log.info("activation email sent email=%s device=%s", email.pk, device.pk)
    return Outcome.SENT


def _skip_reason(email: ActivationEmail) -> str:
    device = email.device
    if email.integration is None:
        return "the MDM integration was removed"
    if device.state != Device.WAITING:
        return "the device was already active or removed"
    if email.tenant.anonymous_users:
        return "the tenant keeps no email addresses"
    return ""


def _usable_link(integration: Integration) -> ActivationToken:
    link = tokens.current(integration, ActivationToken.LINK)
    if link.expired():
        # An email with a dead link helps nobody; a fresh link keeps the old devices' ones.
        link = tokens.replace(integration, ActivationToken.LINK, actor="system")
    return link


def _record_failure(email: ActivationEmail, error: Exception, now) -> str:
    attempts = email.attempts + 1
    final = attempts >= MAX_ATTEMPTS or isinstance(error, ValueError)
    ActivationEmail.objects.filter(pk=email.pk).update(
        status=ActivationEmail.FAILED if final else ActivationEmail.PENDING,
        attempts=attempts,
        last_attempt_at=now,
        last_error=f"{type(error).__name__}: {error}"[:1000],
    )
    log.warning(
        "activation email failed email=%s attempt=%d error=%s",
        email.pk, attempts, type(error).__name__,
    )  # fmt: skip
    return Outcome.FAILED if final else Outcome.RETRY


def due_for_sweep(now=None) -> list[int]:
    """Pending emails whose task may have been lost: none sent them for a while."""
    now = now or timezone.now()
    stale = now - timedelta(minutes=2)
    rows = ActivationEmail.objects.filter(status=ActivationEmail.PENDING, created_at__lt=stale)
    rows = rows.exclude(last_attempt_at__gte=stale)
    return list(rows.order_by("created_at").values_list("pk", flat=True)[:200])
