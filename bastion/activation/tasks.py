"""Thin Celery tasks: load ids, call the email code, return a summary."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from bastion.activation import emails
from bastion.activation.models import AdhocLookup

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="bastion.activation.tasks.send_activation_email",
    max_retries=emails.MAX_ATTEMPTS,
)
def send_activation_email(self, email_id: int) -> dict:
    outcome = emails.deliver(email_id)
    if outcome == emails.Outcome.RETRY:
        # Backoff with jitter; the row stays pending, so a lost retry is swept up later.
        countdown = min(600, 30 * 2**self.request.retries) + random.uniform(0, 10)
        raise self.retry(countdown=countdown)
    return {"email": email_id, "outcome": outcome}


@shared_task(name="bastion.activation.tasks.sweep_pending_emails")
def sweep_pending_emails() -> int:
    """Re-sends pending emails whose task was lost; a repeated delivery sends nothing twice."""
    ids = emails.due_for_sweep()
    for email_id in ids:
        send_activation_email.delay(email_id)

    # The rate limiter only looks one minute back.
    AdhocLookup.objects.filter(created_at__lt=timezone.now() - timedelta(hours=1)).delete()
    return len(ids)
