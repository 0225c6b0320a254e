"""A per-device request limit shared by every web process: a counter row per device and
fixed window, incremented atomically in the database."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from bastion.threats.models import DeviceRateWindow

WINDOW_SECONDS = 60


def limit() -> int:
    return getattr(settings, "BASTION_DEVICE_RATE_LIMIT", 120)


def hit(device_id: int, now: datetime | None = None) -> int | None:
    """Counts one request; returns None when allowed, else seconds until the next window."""
    now = now or timezone.now()
    epoch = int(now.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % WINDOW_SECONDS, tz=now.tzinfo)

    rows = DeviceRateWindow.objects.filter(device_id=device_id, window_start=start)
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                DeviceRateWindow.objects.create(device_id=device_id, window_start=start, count=1)
        except IntegrityError:
            rows.update(count=F("count") + 1)
        else:
            # A new window: the device's old ones are of no more use.
            DeviceRateWindow.objects.filter(
                device_id=device_id, window_start__lt=start - timedelta(minutes=5)
            ).delete()

    count = rows.values_list("count", flat=True).first() or 0
    if count > limit():
        return WINDOW_SECONDS - epoch % WINDOW_SECONDS
    return None
