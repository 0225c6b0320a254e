from django.db import models
from django.utils import timezone

from bastion.inventory.models import Device
from bastion.tenancy.models import Tenant


class MaliciousApp(models.Model):
    """An administrator's mark on an app, by platform and identifier.

    Keyed by identifier rather than by the synced app row, so an app can be marked before
    any device reports it; a later sync that finds it raises the threat then.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="malicious_apps")
    platform = models.CharField(max_length=16, choices=Device.PLATFORMS)
    identifier = models.CharField(max_length=255)
    reason = models.CharField(max_length=500, blank=True)
    marked_by = models.CharField(max_length=150)
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "platform", "identifier"], name="one_mark_per_app"
            ),
        ]
