"""Sign-in lockout: too many recent failures for one account, or from one address, lock it.

Failures live in the database, so every web process sees the same count.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from bastion.console.models import SignInFailure

# An address is shared by the people behind one NAT, so it gets more tries than an account.
ADDRESS_FACTOR = 4


def _window_start():
    return timezone.now() - timedelta(minutes=settings.BASTION_LOGIN_LOCKOUT_MINUTES)


def is_locked(username: str, source_ip: str | None) -> bool:
    recent = SignInFailure.objects.filter(created_at__gte=_window_start())
    limit = settings.BASTION_LOGIN_MAX_FAILURES
    if recent.filter(username=username.lower()[:150]).count() >= limit:
        return True
    if source_ip and recent.filter(source_ip=source_ip).count() >= limit * ADDRESS_FACTOR:
        return True
    return False


def record_failure(username: str, source_ip: str | None) -> None:
    SignInFailure.objects.filter(created_at__lt=_window_start()).delete()
    SignInFailure.objects.create(username=username.lower()[:150], source_ip=source_ip)


def clear(username: str) -> None:
    SignInFailure.objects.filter(username=username.lower()[:150]).delete()
