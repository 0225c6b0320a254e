"""Emails to a tenant's administrators about threat events."""

import logging

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from bastion.tenancy.models import Membership
from bastion.threats.catalog import catalog
from bastion.threats.models import AdminNotice

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def recipients(tenant_id: int) -> list[str]:
    members = Membership.objects.filter(tenant_id=tenant_id, role=Membership.ADMIN)
    return sorted({m.user.email for m in members.select_related("user") if m.user.email})


def compose(notice: AdminNotice) -> tuple[str, str]:
    event = notice.event
    device = event.device
    threat = catalog().get(event.threat_id)
    name = threat.name if threat else event.threat_id
    user = device.user
    # shown_*() mask the person where their integration asks for it.
    owner = f"{user.shown_name()} <{user.shown_email()}>" if user else "unknown"
    subject = f"[Bastion] {event.severity.title()} threat: {name}"
    body = "\n".join(
        [
            f"Threat: {name} ({event.threat_id})",
            f"Severity: {event.severity}",
            f"Detected at: {event.detected_at:%Y-%m-%d %H:%M:%S %Z}",
            f"Device: {device.get_platform_display()} {device.model} (MDM id {device.mdm_id})",
            f"Group: {event.group.name if event.group else '-'}",
            f"User: {owner}",
            f"Event: {event.pk}",
        ]
    )
    return subject, body


def send_notice(notice_id: int) -> str:
    with transaction.atomic():
        notice = (
            AdminNotice.objects.select_for_update()
            .filter(pk=notice_id, state=AdminNotice.PENDING)
            .first()
        )
        if notice is None:
            return "skipped"
        notice.attempts += 1
        to = recipients(notice.tenant_id)
        if not to:
            notice.state = AdminNotice.FAILED
            notice.last_error = "no administrator has an email address"
            notice.save(update_fields=["state", "attempts", "last_error"])
            return "failed"
        subject, body = compose(notice)
        try:
            send_mail(subject, body, None, to)
        except Exception as error:  # noqa: BLE001 - any mail failure is retried, then shown
            notice.last_error = f"{type(error).__name__}: {error}"[:2000]
            if notice.attempts >= MAX_ATTEMPTS:
                notice.state = AdminNotice.FAILED
            notice.save(update_fields=["state", "attempts", "last_error"])
            log.warning("notice failed notice=%s attempt=%s", notice.pk, notice.attempts)
            return "retry"
        notice.state = AdminNotice.SENT
        notice.sent_at = timezone.now()
        notice.save(update_fields=["state", "attempts", "sent_at"])
    return "sent"
