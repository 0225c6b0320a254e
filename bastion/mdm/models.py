from django.db import models
from django.db.models import Q
from django.utils import timezone

from bastion import crypto
from bastion.tenancy.models import Tenant


class Integration(models.Model):
    """A connection to one MDM, and the status an administrator looks at."""

    CORE = "core"
    CLOUD = "cloud"
    KINDS = [(CORE, "MobileIron Core"), (CLOUD, "MobileIron Cloud")]

    IDLE = "idle"
    QUEUED = "queued"
    SYNCING = "syncing"
    OK = "ok"
    FAILED = "failed"
    AUTH_FAILED = "auth_failed"
    STATUSES = [
        (IDLE, "Never synced"),
        (QUEUED, "Queued"),
        (SYNCING, "Syncing"),
        (OK, "Synced"),
        (FAILED, "Last sync failed"),
        (AUTH_FAILED, "Credentials rejected"),
    ]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    kind = models.CharField(max_length=16, choices=KINDS)
    name = models.CharField(max_length=100, help_text="Prefixes the console groups' names.")
    url = models.CharField(max_length=500)
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField()
    space_id = models.CharField(max_length=64, blank=True)
    space_name = models.CharField(max_length=255, blank=True)
    ca_bundle = models.CharField(max_length=500, blank=True)

    sync_users = models.BooleanField(default=True)
    # A hash of the administrator's override, or "" for the tenant's default password.
    synced_password_hash = models.CharField(max_length=255, blank=True)
    mask_users = models.BooleanField(default=False)
    email_ios = models.BooleanField(default=False)
    email_android = models.BooleanField(default=False)
    sync_interval_minutes = models.PositiveIntegerField(default=240)
    # When a device leaves the inventory (or the integration is removed): undo the MDM
    # actions already applied to it, or leave them (the MDM may be keeping the device
    # quarantined on purpose).
    undo_actions_on_removal = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=STATUSES, default=IDLE)
    last_error = models.TextField(blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(default=timezone.now, db_index=True)
    profiles_unavailable = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="mdm_name_unique_in_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def password(self) -> str:
        return crypto.decrypt(self.password_encrypted)

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = crypto.encrypt(value)

    def selected_groups(self):
        return self.groups.filter(priority__isnull=False).order_by("priority")


class ActionTarget(models.Model):
    """A label or device group the MDM offers as a threat response, learned by each sync."""

    LABEL = "label"
    ATTRIBUTE = "attribute"
    LOCK = "lock"
    KINDS = [(LABEL, "Label"), (ATTRIBUTE, "Device group (custom attribute)"), (LOCK, "Lock")]

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="action_targets"
    )
    kind = models.CharField(max_length=16, choices=KINDS)
    mdm_group_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    attribute = models.CharField(max_length=255, blank=True)
    # "" when usable; otherwise why not (dynamic label, selected for sync, …).
    blocker = models.CharField(max_length=255, blank=True)
    present = models.BooleanField(default=True, help_text="Still listed by the MDM.")
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind", "mdm_group_id"], name="one_target_per_group"
            ),
        ]

    @property
    def usable(self) -> bool:
        return self.present and not self.blocker


class SyncRun(models.Model):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    ADHOC = "adhoc"
    TRIGGERS = [(SCHEDULED, "Scheduled"), (MANUAL, "Sync now"), (ADHOC, "Ad-hoc")]

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"
    SKIPPED = "skipped"
    STATUSES = [
        (QUEUED, "Queued"),
        (RUNNING, "Running"),
        (DONE, "Done"),
        (PARTIAL, "Incomplete: nothing removed"),
        (FAILED, "Failed"),
        (SKIPPED, "Skipped: another sync was running"),
    ]

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=TRIGGERS)
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    moved = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    users_added = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Operator-facing messages: skip reasons with counts, what failed, what was left alone.
    messages = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The database, not luck, keeps two syncs of one integration apart.
            models.UniqueConstraint(
                fields=["integration"],
                condition=Q(status="running"),
                name="one_running_sync_per_integration",
            ),
        ]

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    def counts(self) -> dict:
        return {
            "seen": self.seen,
            "added": self.added,
            "updated": self.updated,
            "moved": self.moved,
            "removed": self.removed,
            "skipped": self.skipped,
            "users_added": self.users_added,
        }
