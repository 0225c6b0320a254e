"""A per-device request limit shared by every web process: a counter row per device and
fixed window, incremented atomically in the database by one statement."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
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

    count = _count(device_id, start)
    if count > limit():
        return WINDOW_SECONDS - epoch % WINDOW_SECONDS
    return None


def prune(now: datetime | None = None) -> int:
    """Deletes the windows that ended more than five minutes ago (the scheduler's job, so
    that no device request pays for it); returns how many."""
    now = now or timezone.now()
    deleted, _ = DeviceRateWindow.objects.filter(
        window_start__lt=now - timedelta(minutes=5)
    ).delete()
    return deleted


def _count(device_id: int, start: datetime) -> int:
    """Adds one to the device's counter for the window starting at `start`, creating it
    the first time, and returns the new count: an upsert, so concurrent requests from
    several processes neither lose a count nor collide."""
    table = connection.ops.quote_name(DeviceRateWindow._meta.db_table)
    sql = (
        f"INSERT INTO {table} (device_id, window_start, count) VALUES (%s, %s, 1) "  # noqa: S608
        f"ON CONFLICT (device_id, window_start) DO UPDATE SET count = {table}.count + 1 "
        "RETURNING count"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [device_id, connection.ops.adapt_datetimefield_value(start)])
        return cursor.fetchone()[0]
