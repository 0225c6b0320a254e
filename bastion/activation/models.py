import hashlib

from django.db import models
from django.db.models import Q
from django.utils import timezone

from bastion import crypto
from bastion.inventory.models import Device
from bastion.tenancy.models import Tenant

DEFAULT_EMAIL_SUBJECT = "Activate threat protection on your {{ platform }} device"
DEFAULT_EMAIL_HTML = (
    "<p>Your {{ platform }} device {{ device_name }} is protected by {{ tenant }}.</p>\n"
    "<p>Once the protection app is installed, open this link on the device to activate it:</p>"
    '\n<p><a href="{{ link }}">Activate protection</a></p>\n'
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ActivationSettings(models.Model):
    """A tenant's activation choices: the re-activation check and the email template."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="activation")
    require_reactivation_approval = models.BooleanField(
        default=True,
        help_text="Hold re-activations of active devices through a shared link, code or "
        "managed config until an administrator approves them.",
    )
    email_subject = models.CharField(max_length=200, default=DEFAULT_EMAIL_SUBJECT)
    email_html = models.TextField(default=DEFAULT_EMAIL_HTML)
    updated_at = models.DateTimeField(auto_now=True)

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> "ActivationSettings":
        settings, _ = cls.objects.get_or_create(tenant=tenant)
        return settings


class ActivationToken(models.Model):
    """An integration's MTD activation code or activation link token.

    Stored encrypted so administrators can copy it again, and hashed so an agent's
    token finds its row with an index. Ending a token (rotation, regeneration) stops new
    activations with it; devices it already activated keep their own credentials.
    """

    CODE = "code"
    LINK = "link"
    KINDS = [(CODE, "MTD activation code"), (LINK, "Activation link")]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(
        "mdm.Integration", on_delete=models.CASCADE, related_name="activation_tokens"
    )
    kind = models.CharField(max_length=8, choices=KINDS)
    key_id = models.CharField(max_length=32, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_encrypted = models.TextField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind"],
                condition=Q(ended_at__isnull=True),
                name="one_current_token_per_kind",
            ),
        ]

    @property
    def token(self) -> str:
        return crypto.decrypt(self.token_encrypted)

    def expired(self, now=None) -> bool:
        now = now or timezone.now()
        return self.expires_at is not None and now >= self.expires_at


class ReactivationRequest(models.Model):
    """An active device asking for a new credential through a path with no device secret."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    COLLECTED = "collected"
    STATUSES = [
        (PENDING, "Waiting for approval"),
        (APPROVED, "Approved"),
        (REJECTED, "Rejected"),
        (COLLECTED, "Approved and collected by the agent"),
    ]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=16)
    agent_kind = models.CharField(max_length=16, choices=Device.AGENTS)
    pickup_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    collected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "status"])]


class ActivationEmail(models.Model):
    """The one activation email a device's user gets; the row is the outbox and the record."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    STATUSES = [
        (PENDING, "Waiting to be sent"),
        (SENT, "Sent"),
        (FAILED, "Failed"),
        (SKIPPED, "Not sent"),
    ]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(
        "mdm.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One row per device, ever: a later sync never sends a second email.
    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="+")
    recipient = models.CharField(max_length=254)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]


class AdhocLookup(models.Model):
    """One ad-hoc MDM lookup, counted to rate-limit them per tenant across processes."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"])]
