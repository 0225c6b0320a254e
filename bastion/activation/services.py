"""What administrators do with activation, shared by the command line, pages and APIs.

Every function takes the acting administrator's name (or "cli:<user>") for the audit log.
Showing a code or link in full, and downloading a file that holds the code, is audited.
"""

from django.conf import settings

from bastion.activation import emails, files, tokens
from bastion.activation.models import ActivationSettings, ActivationToken, ReactivationRequest
from bastion.mdm.models import Integration
from bastion.tenancy.models import Tenant


def _masked(value: str) -> str:
    return value[:6] + "…" if value else ""


def summary(integration: Integration) -> dict:
    """What the page shows without revealing a secret."""
    code = tokens.current(integration, ActivationToken.CODE)
    link = tokens.current(integration, ActivationToken.LINK)
    email_available, email_reason = emails.options_status(integration)
    return {
        "integration": integration.pk,
        "kind": integration.kind,
        "code": {
            "key_id": code.key_id,
            "preview": _masked(code.token),
            "created_at": code.created_at,
        },
        "link": {
            "key_id": link.key_id,
            "preview": _masked(link.token),
            "expires_at": link.expires_at,
            "expires_shown": tokens.shown_time(link.expires_at),
            "expired": link.expired(),
            "mdm_id_variable": tokens.MDM_ID_VARIABLE[integration.kind],
        },
        "bundle_id": files.bundle_id(),
        "tenant_id": integration.tenant.tenant_id,
        "files": [{"name": name, "title": title} for name, title in files.FILES.items()],
        "emails": {
            "available": email_available,
            "reason": email_reason,
            "ios": integration.email_ios,
            "android": integration.email_android,
        },
    }


def show_code(integration: Integration, actor: str, ip=None) -> dict:
    """The current code; `stale` says when it sends devices to another address than
    Bastion's public URL now is (the URL changed since it was made: rotate it)."""
    code = tokens.current(integration, ActivationToken.CODE)
    tokens.audit(integration, actor, "activation.code_viewed", code, ip)
    return _code_view(code)


def rotate_code(integration: Integration, actor: str, ip=None) -> dict:
    return _code_view(tokens.replace(integration, ActivationToken.CODE, actor, ip))


def _code_view(code: ActivationToken) -> dict:
    address = tokens.code_address(code.token)
    return {
        "code": code.token,
        "key_id": code.key_id,
        "created_at": code.created_at,
        "address": address,
        "stale": address != settings.BASTION_PUBLIC_URL,
    }


def _link_view(integration: Integration, link: ActivationToken) -> dict:
    return {
        "link": tokens.fleet_link(integration, link),
        "token": link.token,
        "key_id": link.key_id,
        "mdm_id_variable": tokens.MDM_ID_VARIABLE[integration.kind],
        "expires_at": link.expires_at,
        "expires_shown": tokens.shown_time(link.expires_at),
        "expired": link.expired(),
    }


def show_link(integration: Integration, actor: str, ip=None) -> dict:
    link = tokens.current(integration, ActivationToken.LINK)
    tokens.audit(integration, actor, "activation.link_viewed", link, ip)
    return _link_view(integration, link)


def regenerate_link(
    integration: Integration,
    actor: str,
    ip=None,
    expires_at: str | None = None,
    days: int | None = None,
    time_zone: str | None = None,
) -> dict:
    """Raises ValueError naming the field when the expiry can't be used."""
    expiry = tokens.parse_expiry(expires_at, days, time_zone)
    link = tokens.replace(integration, ActivationToken.LINK, actor, ip, expires_at=expiry)
    return _link_view(integration, link)


def download(integration: Integration, name: str, actor: str, ip=None) -> files.File:
    """A file's bytes, content type and filename; raises KeyError for an unknown name."""
    rendered = files.render(integration, name)
    if rendered.secret:
        tokens.audit(integration, actor, "activation.file_downloaded", None, ip, file=name)
    return rendered


def config_table(integration: Integration, release: str) -> list[dict]:
    """The managed app config as key/type/value rows, for typing into Cloud's console."""
    if release not in ("current", "legacy"):
        raise ValueError("release: choose current or legacy")
    return [
        {"key": key, "type": "String", "value": value}
        for key, value in files.config_entries(integration, release)
    ]


def pending_requests(tenant: Tenant, status: str = ReactivationRequest.PENDING) -> list[dict]:
    rows = (
        ReactivationRequest.objects.filter(tenant=tenant, status=status)
        .select_related("device", "device__group")
        .order_by("created_at")[:500]
    )
    return [request_view(row) for row in rows]


def request_view(row: ReactivationRequest) -> dict:
    return {
        "id": row.pk,
        "device_id": row.device_id,
        "mdm_id": row.device.mdm_id,
        "platform": row.device.platform,
        "group": row.device.group.name,
        "method": row.method,
        "agent_kind": row.agent_kind,
        "status": row.status,
        "source_ip": row.source_ip,
        "created_at": row.created_at,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
    }


def settings_view(tenant: Tenant) -> dict:
    row = ActivationSettings.for_tenant(tenant)
    return {
        "require_reactivation_approval": row.require_reactivation_approval,
        "email_subject": row.email_subject,
        "email_html": row.email_html,
        "anonymous_users": tenant.anonymous_users,
    }


def update_settings(
    tenant: Tenant,
    actor: str,
    ip=None,
    require_reactivation_approval: bool | None = None,
    email_subject: str | None = None,
    email_html: str | None = None,
) -> dict:
    """Raises ValueError naming the field; nothing is saved unless every value is valid."""
    from bastion.tenancy.models import AuditEntry

    row = ActivationSettings.for_tenant(tenant)
    subject = row.email_subject if email_subject is None else email_subject
    html = row.email_html if email_html is None else email_html
    if len(subject) > 200:
        raise ValueError("email_subject: at most 200 characters")
    if len(html) > 50_000:
        raise ValueError("email_html: at most 50,000 characters")
    emails.validate_templates(subject, html)

    changed = {}
    if require_reactivation_approval is not None:
        changed["require_reactivation_approval"] = require_reactivation_approval
    if email_subject is not None:
        changed["email_subject"] = subject
    if email_html is not None:
        changed["email_html"] = html
    for name, value in changed.items():
        setattr(row, name, value)
    row.save()
    AuditEntry.objects.create(
        tenant=tenant,
        actor=actor[:150],
        action="activation.settings_changed",
        object_type="tenant",
        object_id=str(tenant.pk),
        detail={"fields": sorted(changed)},
        source_ip=ip,
    )
    return settings_view(tenant)


def email_log(tenant: Tenant, status: str | None = None, limit: int = 100) -> list[dict]:
    from bastion.activation.models import ActivationEmail

    rows = ActivationEmail.objects.filter(tenant=tenant).select_related("integration")
    if status:
        rows = rows.filter(status=status)
    return [
        {
            "id": row.pk,
            "device_id": row.device_id,
            "integration_id": row.integration_id,
            "recipient": _recipient(row),
            "status": row.status,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at,
            "sent_at": row.sent_at,
        }
        for row in rows.order_by("-created_at")[: max(1, min(limit, 1000))]
    ]


def _recipient(row) -> str:
    from bastion.inventory.models import mask

    masked = row.integration is not None and row.integration.mask_users
    return mask(row.recipient) if masked else row.recipient
