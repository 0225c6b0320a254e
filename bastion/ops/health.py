"""Readiness: can this process reach the database and the broker, and is the scheduler
ticking. Each check answers (ok, detail) and never raises."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

# The scheduler's shortest beat is 30 s: three missed ticks mean it is gone.
SCHEDULER_STALE_AFTER = timedelta(seconds=120)


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return False, type(error).__name__
    return True, connection.vendor


def check_broker() -> tuple[bool, str]:
    from bastion.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return False, type(error).__name__
    return True, str(transport)


def check_scheduler() -> tuple[bool, str]:
    from bastion.ops.models import Heartbeat

    try:
        beat = Heartbeat.objects.filter(name="scheduler").first()
    except Exception as error:  # noqa: BLE001
        return False, type(error).__name__
    if beat is None:
        return False, "no tick recorded yet"
    age = timezone.now() - beat.at
    detail = f"last tick {int(age.total_seconds())}s ago"
    return age <= stale_after(), detail


def stale_after() -> timedelta:
    seconds = getattr(settings, "BASTION_SCHEDULER_STALE_SECONDS", None)
    return timedelta(seconds=seconds) if seconds else SCHEDULER_STALE_AFTER


def readiness() -> tuple[bool, dict]:
    """Ready means able to serve: database and broker. A stopped scheduler is reported but
    does not take web processes out of a load balancer, which would not bring it back."""
    checks = {}
    for name, check in (
        ("database", check_database),
        ("broker", check_broker),
        ("scheduler", check_scheduler),
    ):
        ok, detail = check()
        checks[name] = {"ok": ok, "detail": detail}
    ready = checks["database"]["ok"] and checks["broker"]["ok"]
    return ready, checks
