import hashlib
import hmac
import secrets

from django.db import models
from django.utils import timezone

from bastion.inventory.models import Device

PREFIX_LENGTH = 12


class DeviceCredential(models.Model):
    """An agent's own secret. Random, shown once, stored hashed, revocable.

    The token is "<prefix>.<secret>": the prefix finds the row with an index, the secret
    is compared in constant time against its SHA-256 (a 256-bit random secret needs no
    slow hash: there is nothing to guess).
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="credentials")
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["device", "revoked_at"])]

    @classmethod
    def issue(cls, device: Device) -> tuple["DeviceCredential", str]:
        """Creates a credential for `device`; returns it and the token, shown only now."""
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        credential = cls.objects.create(device=device, prefix=prefix, secret_hash=_hash(secret))
        return credential, f"{prefix}.{secret}"

    @classmethod
    def authenticate(cls, token: str) -> "DeviceCredential | None":
        prefix, _, secret = token.partition(".")
        if len(prefix) != PREFIX_LENGTH or not secret or len(secret) > 128:
            return None

        credential = (
            cls.objects.select_related("device", "device__tenant")
            .filter(prefix=prefix, revoked_at__isnull=True)
            .first()
        )
        # Compare even when no row matched, so timing says nothing about which prefixes exist.
        expected = credential.secret_hash if credential else _hash("")
        if not hmac.compare_digest(expected, _hash(secret)) or credential is None:
            return None
        if credential.device.state == Device.REMOVED:
            return None
        return credential

    @classmethod
    def revoke_for(cls, device_ids) -> int:
        return cls.objects.filter(device_id__in=device_ids, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AdminToken(models.Model):
    """A console account's token for the admin API, scoped to one tenant and its role there."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, user, tenant, name: str = "") -> tuple["AdminToken", str]:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, tenant=tenant, name=name, prefix=prefix, secret_hash=_hash(secret)
        )
        return token, f"{prefix}.{secret}"

    @classmethod
    def authenticate(cls, value: str) -> "AdminToken | None":
        prefix, _, secret = value.partition(".")
        if len(prefix) != PREFIX_LENGTH or not secret or len(secret) > 128:
            return None
        token = (
            cls.objects.select_related("user", "tenant")
            .filter(prefix=prefix, revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        expected = token.secret_hash if token else _hash("")
        if not hmac.compare_digest(expected, _hash(secret)) or token is None:
            return None
        return token
