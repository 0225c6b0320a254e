from django.db import models
from django.db.models import Q

from bastion.tenancy.models import Tenant

# Between the MDM name and the MDM group's name in a console group's name.
GROUP_NAME_SEPARATOR = " / "
DEFAULT_GROUP_NAME = "Default Group"


class ConsoleGroup(models.Model):
    """A group of devices in Bastion, with its own Threat Response Matrix.

    Keyed by (integration, MDM group id) rather than by name, so renaming a label in the
    MDM, or deselecting and reselecting it, keeps the group's history and policy. Each
    tenant also has one Default Group tied to no MDM group.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="groups")
    integration = models.ForeignKey(
        "mdm.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="groups"
    )
    mdm_group_id = models.CharField(max_length=128, blank=True)
    mdm_group_name = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=400)
    is_default = models.BooleanField(default=False)
    # Position in the integration's ordered selection (0 is the highest priority); None
    # when the group is no longer selected.
    priority = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "mdm_group_id"],
                condition=Q(integration__isnull=False),
                name="one_group_per_mdm_group",
            ),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="one_default_group"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default_for(cls, tenant: Tenant) -> "ConsoleGroup":
        group, _ = cls.objects.get_or_create(
            tenant=tenant, is_default=True, defaults={"name": DEFAULT_GROUP_NAME}
        )
        return group


class DeviceUser(models.Model):
    """The person a device belongs to, as the MDM knows them.

    Device users are not console accounts and have no way to sign in: their password
    exists only because the guide gives every synced user one, and only as a hash.
    """

    # Served by the (tenant, user_key) unique index.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="device_users", db_index=False
    )
    # Keyed hash of the MDM's user id (or email): stable across syncs and integrations,
    # and present even for anonymous tenants, which store no email.
    user_key = models.CharField(max_length=64)
    email = models.CharField(max_length=254, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    password_hash = models.CharField(max_length=255, blank=True)
    group = models.ForeignKey(
        ConsoleGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="users"
    )
    # Set once any integration that brought this user in asks for masking.
    masked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user_key"], name="one_user_per_key"),
        ]

    def shown_email(self) -> str:
        return mask(self.email) if self.masked else self.email

    def shown_name(self) -> str:
        name = self.display_name or f"{self.first_name} {self.last_name}".strip()
        return mask(name) if self.masked else name


def mask(value: str) -> str:
    if not value:
        return ""
    return value[0] + "***"


class Device(models.Model):
    WAITING = "waiting"
    ACTIVE = "active"
    REMOVED = "removed"
    STATES = [(WAITING, "Waiting for activation"), (ACTIVE, "Active"), (REMOVED, "Removed")]

    IOS = "ios"
    ANDROID = "android"
    PLATFORMS = [(IOS, "iOS"), (ANDROID, "Android")]

    AGENT_NONE = ""
    AGENT_MDM = "mdm_builtin"
    AGENT_STANDALONE = "standalone"
    AGENTS = [(AGENT_NONE, "None"), (AGENT_MDM, "MDM built-in"), (AGENT_STANDALONE, "Standalone")]

    # The tenant and group columns need no index of their own: the (tenant, state) and
    # (group, state) indexes below serve them, and every index costs each synced insert.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="devices", db_index=False
    )
    integration = models.ForeignKey(
        "mdm.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    group = models.ForeignKey(
        ConsoleGroup, on_delete=models.PROTECT, related_name="devices", db_index=False
    )
    user = models.ForeignKey(
        DeviceUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    # The id the MDM's actions take: Core's uuid, Cloud's numeric id.
    mdm_id = models.CharField(max_length=128)
    guid = models.CharField(max_length=128, blank=True)
    platform = models.CharField(max_length=16, choices=PLATFORMS)
    os_version = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=128, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=255, blank=True)
    # Keyed hashes: enough to recognise a re-enrolled device, useless to anyone else.
    serial_hash = models.CharField(max_length=64, blank=True, db_index=True)
    udid_hash = models.CharField(max_length=64, blank=True, db_index=True)
    state = models.CharField(max_length=16, choices=STATES, default=WAITING)
    agent_kind = models.CharField(max_length=16, choices=AGENTS, blank=True, default=AGENT_NONE)
    last_checkin = models.DateTimeField(null=True, blank=True)
    # The MDM check-in time at which apps were last fetched: apps are fetched again only
    # for devices that checked in since, which keeps within the MDM's rate limits.
    apps_checkin = models.DateTimeField(null=True, blank=True)
    # Hash of every synced field, so an unchanged device costs no write.
    fingerprint = models.CharField(max_length=32, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "mdm_id"],
                condition=Q(integration__isnull=False),
                name="one_device_per_mdm_id",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state"]),
            models.Index(fields=["group", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} {self.model} ({self.mdm_id})"


class App(models.Model):
    """An app as identified across the tenant's devices (platform + bundle id)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="apps")
    platform = models.CharField(max_length=16, choices=Device.PLATFORMS)
    identifier = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "platform", "identifier"], name="one_app_per_identifier"
            ),
        ]


class DeviceApp(models.Model):
    # Install rows are the inventory's bulk (a dozen or more per device) and only the sync
    # writes them, for devices and catalogue entries it has just written; deletions cascade
    # through Django. So no foreign-key check in the database, which would cost a lookup
    # per row at each commit, and no index of the device column alone, which the (device,
    # app) unique index serves.
    device = models.ForeignKey(
        Device,
        on_delete=models.CASCADE,
        related_name="installed_apps",
        db_index=False,
        db_constraint=False,
    )
    app = models.ForeignKey(
        App, on_delete=models.CASCADE, related_name="installations", db_constraint=False
    )
    version = models.CharField(max_length=128, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "app"], name="one_install_per_device"),
        ]


class Profile(models.Model):
    """An iOS configuration profile: one per tenant, however many devices carry it."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"
    SUSPICIOUS = "suspicious"
    STATUSES = [(TRUSTED, "Trusted"), (UNTRUSTED, "Untrusted"), (SUSPICIOUS, "Suspicious")]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="profiles")
    identifier = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    organization = models.CharField(max_length=255, blank=True)
    managed = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=STATUSES, default=SUSPICIOUS)
    detected_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "identifier"], name="one_profile_per_id"),
        ]


class DeviceProfile(models.Model):
    # As for DeviceApp: written only by the sync, checked there.
    device = models.ForeignKey(
        Device,
        on_delete=models.CASCADE,
        related_name="installed_profiles",
        db_index=False,
        db_constraint=False,
    )
    profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="installations", db_constraint=False
    )
    installed_by_mdm = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "profile"], name="one_profile_per_device"),
        ]
