"""The per-device request limit: one counter per device and minute, shared by every web
process through the database, and pruned by the scheduler."""

from datetime import UTC, datetime, timedelta

from bastion.threats import ratelimit
from bastion.threats.models import DeviceRateWindow

NOON = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


def test_requests_are_counted_per_device_and_window(iris, settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 3
    answers = [ratelimit.hit(iris.pk, NOON + timedelta(seconds=n)) for n in range(4)]

    assert answers[:3] == [None, None, None]
    assert answers[3] == 60 - 8  # seconds until the next window
    assert ratelimit.hit(iris.pk, NOON + timedelta(minutes=1)) is None
    counts = DeviceRateWindow.objects.filter(device=iris).order_by("window_start")
    assert [w.count for w in counts] == [4, 1]


def test_pruning_keeps_the_last_five_minutes(iris):
    for minutes in (0, 3, 6, 9):
        ratelimit.hit(iris.pk, NOON + timedelta(minutes=minutes))

    assert ratelimit.prune(NOON + timedelta(minutes=9, seconds=30)) == 2
    kept = DeviceRateWindow.objects.filter(device=iris).values_list("window_start", flat=True)
    assert sorted(kept) == [
        NOON.replace(second=0) + timedelta(minutes=6),
        NOON.replace(second=0) + timedelta(minutes=9),
    ]
