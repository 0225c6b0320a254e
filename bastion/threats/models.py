from django.db import models
from django.utils import timezone

from bastion.inventory.models import ConsoleGroup, Device
from bastion.mdm.models import ActionTarget, Integration
from bastion.tenancy.models import Tenant
from bastion.threats.inventory_models import MaliciousApp  # noqa: F401 - Django finds it here


class Matrix(models.Model):
    """A console group's Threat Response Matrix: the draft being edited and the version
    agents get. Rows are keyed by threat id; a threat missing from the rows (a newer
    catalog added it) takes the catalog's defaults, so no setting is ever lost."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="matrices")
    group = models.OneToOneField(ConsoleGroup, on_delete=models.CASCADE, related_name="matrix")
    draft = models.JSONField(default=dict, blank=True)
    draft_changed_at = models.DateTimeField(null=True, blank=True)
    current = models.ForeignKey(
        "MatrixVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)


class MatrixVersion(models.Model):
    """A deployed matrix: numbered, immutable once written."""

    matrix = models.ForeignKey(Matrix, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    rows = models.JSONField()
    catalog_version = models.PositiveIntegerField()
    deployed_at = models.DateTimeField(default=timezone.now)
    deployed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["matrix", "number"], name="one_matrix_version_number"),
        ]


class ThreatEvent(models.Model):
    ACTIVE = "active"
    MITIGATED = "mitigated"
    STATES = [(ACTIVE, "Active"), (MITIGATED, "Mitigated")]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="threat_events")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="threat_events")
    # The group whose matrix answered the event; kept when the device moves later.
    group = models.ForeignKey(
        ConsoleGroup, null=True, on_delete=models.SET_NULL, related_name="threat_events"
    )
    matrix_version = models.ForeignKey(
        MatrixVersion, null=True, on_delete=models.PROTECT, related_name="events"
    )
    agent_event_id = models.CharField(max_length=64)
    threat_id = models.CharField(max_length=64)
    severity = models.CharField(max_length=16)
    detected_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=STATES, default=ACTIVE)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    # The row left the answer to the MDM's own agent: no MDM call was made.
    handled_on_device = models.BooleanField(default=False)
    # The matrix row had the threat disabled: recorded, not answered.
    ignored = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "agent_event_id"], name="one_event_per_agent_id"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "received_at"]),
            models.Index(fields=["device", "state"]),
        ]


class ResponseAction(models.Model):
    """One MDM call the response engine owes: the outbox row a worker delivers."""

    APPLY = "apply"
    UNDO = "undo"
    OPS = [(APPLY, "Apply"), (UNDO, "Undo")]

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STATES = [
        (PENDING, "Pending"),
        (CLAIMED, "Being delivered"),
        (DONE, "Done"),
        (FAILED, "Failed"),
        (CANCELLED, "Cancelled"),
    ]
    OPEN_STATES = (PENDING, CLAIMED)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(ThreatEvent, on_delete=models.CASCADE, related_name="actions")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(
        Integration, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    op = models.CharField(max_length=8, choices=OPS)
    undoes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="undos"
    )
    # What the MDM is asked, copied from the target when the event arrived, so a later
    # rename in the MDM shows as a visible failure rather than a silent change.
    target = models.ForeignKey(
        ActionTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=255, blank=True)
    attribute = models.CharField(max_length=255, blank=True)
    # Whether mitigation undoes this apply (the row said Remove and the threat allows it).
    undo_on_mitigation = models.BooleanField(default=False)
    # Set once the device left the inventory or its group: mitigation leaves it alone.
    settled = models.BooleanField(default=False)

    state = models.CharField(max_length=16, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["device", "state"]),
        ]

    @property
    def target_key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.attribute)


class AdminNotice(models.Model):
    """An email to the tenant's administrators about one event; the ledger that keeps
    them to one per device and threat within the window."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    STATES = [(PENDING, "Pending"), (SENT, "Sent"), (FAILED, "Failed")]

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(ThreatEvent, on_delete=models.CASCADE, related_name="notices")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    threat_id = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["device", "threat_id", "created_at"])]


class DeviceRateWindow(models.Model):
    """Requests one device made in one fixed window: a limiter every process shares."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "window_start"], name="one_rate_window"),
        ]
