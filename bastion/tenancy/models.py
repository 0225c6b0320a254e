import secrets

from django.conf import settings
from django.db import models


def new_tenant_id() -> str:
    return secrets.token_hex(8)


class Tenant(models.Model):
    """A customer environment: everything else belongs to exactly one tenant."""

    name = models.CharField(max_length=100, unique=True, help_text="The environment name.")
    tenant_id = models.CharField(max_length=32, unique=True, default=new_tenant_id)
    anonymous_users = models.BooleanField(
        default=False, help_text="Store no email address and no name for device users."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def default_synced_password(self) -> str:
        """The password synced users get when the integration sets none."""
        return self.name.lower().replace(" ", "-") + "1234!"


class Membership(models.Model):
    """A console account's role in one tenant; an account may serve several tenants."""

    ADMIN = "admin"
    READ_ONLY = "read_only"
    ROLES = [(ADMIN, "Administrator"), (READ_ONLY, "Read-only")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=ADMIN)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="one_role_per_tenant"),
        ]


class AuditEntry(models.Model):
    """Who changed what, when, from where. Append-only: nothing in Bastion updates a row."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.CharField(max_length=150, help_text="Username, or 'system'.")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
