"""MTD activation codes and activation links: issue, show, rotate, resolve."""

import secrets
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from bastion import crypto
from bastion.activation.models import ActivationToken, token_hash
from bastion.mdm.models import Integration
from bastion.tenancy.models import AuditEntry

CODE_SALT = "bastion.activation.code"
DEFAULT_LINK_DAYS = 30
MAX_LINK_DAYS = 3650

# The variable each MDM expands to the device's id in app configs and emails.
MDM_ID_VARIABLE = {Integration.CORE: "$DEVICE_UUID$", Integration.CLOUD: "${devicePK}"}


class TokenInvalid(Exception):
    """Unknown, ended or forged: the caller learns nothing more than that."""


class TokenExpired(Exception):
    pass


def audit(integration: Integration, actor: str, action: str, token=None, ip=None, **detail):
    AuditEntry.objects.create(
        tenant_id=integration.tenant_id,
        actor=actor[:150],
        action=action,
        object_type="integration",
        object_id=str(integration.pk),
        detail={**detail, **({"key_id": token.key_id} if token else {})},
        source_ip=ip,
    )


def current(integration: Integration, kind: str) -> ActivationToken:
    """The integration's current code or link, created on first use."""
    token = ActivationToken.objects.filter(
        integration=integration, kind=kind, ended_at__isnull=True
    ).first()
    if token is not None:
        return token
    try:
        with transaction.atomic():
            return _create(integration, kind)
    except IntegrityError:
        # Another request created it first; theirs is the current one.
        return ActivationToken.objects.get(
            integration=integration, kind=kind, ended_at__isnull=True
        )


def _create(integration: Integration, kind: str, expires_at: datetime | None = None):
    key_id = secrets.token_hex(8)
    if kind == ActivationToken.CODE:
        payload = {
            "u": settings.BASTION_PUBLIC_URL,
            "t": integration.tenant.tenant_id,
            "i": integration.pk,
            "k": key_id,
        }
        value = signing.dumps(payload, salt=CODE_SALT)
    else:
        value = secrets.token_urlsafe(32)
        if expires_at is None:
            expires_at = timezone.now() + timedelta(days=DEFAULT_LINK_DAYS)

    return ActivationToken.objects.create(
        tenant_id=integration.tenant_id,
        integration=integration,
        kind=kind,
        key_id=key_id,
        token_hash=token_hash(value),
        token_encrypted=crypto.encrypt(value),
        expires_at=expires_at,
    )


@transaction.atomic
def replace(
    integration: Integration,
    kind: str,
    actor: str,
    ip: str | None = None,
    expires_at: datetime | None = None,
) -> ActivationToken:
    """Ends the current code (rotation) or link (regeneration) and issues a new one.

    Devices activated with the old one keep their own credentials: only new activations
    with the old value stop working.
    """
    now = timezone.now()
    old = list(
        ActivationToken.objects.select_for_update().filter(
            integration=integration, kind=kind, ended_at__isnull=True
        )
    )
    ActivationToken.objects.filter(pk__in=[t.pk for t in old]).update(ended_at=now)
    token = _create(integration, kind, expires_at)
    action = (
        "activation.code_rotated" if kind == ActivationToken.CODE else "activation.link_regenerated"
    )
    audit(
        integration,
        actor,
        action,
        token,
        ip,
        ended=[t.key_id for t in old],
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
    )
    return token


def parse_expiry(value: str | None, days: int | None, zone: str | None, now=None) -> datetime:
    """The expiry an administrator asked for, in UTC; raises ValueError naming the field.

    `value` is an ISO 8601 date and time; without an offset it is read in `zone`, so
    "2025-03-30T09:00" in Europe/Paris is right on either side of a daylight-saving change.
    """
    now = now or timezone.now()
    if value and days is not None:
        raise ValueError("expires_at: give an expiry or a number of days, not both")
    if value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expires_at: use an ISO 8601 date and time") from None
        if parsed.tzinfo is None:
            try:
                parsed = parsed.replace(tzinfo=ZoneInfo(zone or settings.TIME_ZONE))
            except (KeyError, ValueError):
                raise ValueError("time_zone: not a known IANA time zone") from None
        expires = parsed.astimezone(ZoneInfo("UTC"))
    else:
        days = DEFAULT_LINK_DAYS if days is None else days
        if not 1 <= days <= MAX_LINK_DAYS:
            raise ValueError(f"days: choose between 1 and {MAX_LINK_DAYS}")
        expires = now + timedelta(days=days)

    if expires <= now:
        raise ValueError("expires_at: the expiry must be in the future")
    if expires > now + timedelta(days=MAX_LINK_DAYS):
        raise ValueError("expires_at: at most ten years ahead")
    return expires


def link_url(token_value: str, mdm_id: str) -> str:
    """The activation link; `mdm_id` is a device's id or the MDM's variable for it."""
    base = settings.BASTION_PUBLIC_URL
    # The MDM substitutes its variable as typed, so it stays unescaped in the template.
    return f"{base}/activate?token={quote(token_value, safe='')}&MDM_ID={mdm_id}"


def fleet_link(integration: Integration, token: ActivationToken) -> str:
    return link_url(token.token, MDM_ID_VARIABLE[integration.kind])


def device_link(integration: Integration, token: ActivationToken, mdm_id: str) -> str:
    return link_url(token.token, quote(mdm_id, safe=""))


def shown_time(value: datetime | None) -> str:
    """A stored UTC time as administrators see it: ISO 8601 with the zone named."""
    if value is None:
        return ""
    zone = ZoneInfo(settings.TIME_ZONE)
    return f"{value.astimezone(zone).isoformat(timespec='seconds')} ({zone.key})"


def resolve_link(value: str, now=None) -> ActivationToken:
    token = _by_value(value, ActivationToken.LINK)
    if token.expired(now):
        raise TokenExpired()
    return token


def code_address(value: str) -> str:
    """The Bastion address a code sends devices to (the public URL when it was made)."""
    try:
        payload = signing.loads(value, salt=CODE_SALT)
    except signing.BadSignature:
        return ""
    return payload.get("u", "") if isinstance(payload, dict) else ""


def resolve_code(value: str) -> ActivationToken:
    try:
        payload = signing.loads(value, salt=CODE_SALT)
    except signing.BadSignature:
        raise TokenInvalid() from None
    if not isinstance(payload, dict):
        raise TokenInvalid()

    token = _by_value(value, ActivationToken.CODE)
    if payload.get("k") != token.key_id or payload.get("i") != token.integration_id:
        raise TokenInvalid()
    if payload.get("t") != token.tenant.tenant_id:
        raise TokenInvalid()
    return token


def _by_value(value: str, kind: str) -> ActivationToken:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise TokenInvalid()
    token = (
        ActivationToken.objects.select_related("tenant", "integration")
        .filter(token_hash=token_hash(value), kind=kind)
        .first()
    )
    if token is None or token.ended_at is not None:
        raise TokenInvalid()
    return token
