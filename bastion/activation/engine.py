"""How an agent joins: find the tenant and the device, then give it its own credential.

Three ways in: an activation link token, a managed app config (device id and tenant id),
or an MTD activation code. None of them holds a per-device secret, so a device that
already has a credential gets a new one through them only after an administrator
approves (unless the tenant turned that check off). Through its own credential a device
re-activates at once.
"""

import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bastion.activation import adhoc, tokens
from bastion.activation.models import ActivationSettings, ReactivationRequest, token_hash
from bastion.api.models import DeviceCredential
from bastion.inventory.models import Device
from bastion.mdm.models import Integration
from bastion.tenancy.models import AuditEntry, Tenant

log = logging.getLogger(__name__)

LINK = "link"
CONFIG = "config"
CODE = "code"
CREDENTIAL = "credential"

AGENT_OF_METHOD = {
    LINK: Device.AGENT_STANDALONE,
    CONFIG: Device.AGENT_STANDALONE,
    CODE: Device.AGENT_MDM,
}

# Pending re-activation requests one device may have at a time.
MAX_PENDING_PER_DEVICE = 5


class ActivationError(Exception):
    """A refusal the agent sees: an HTTP status, a stable code and a message."""

    def __init__(self, status: int, code: str, message: str, field_name: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field_name


def invalid_token() -> ActivationError:
    return ActivationError(
        401, "invalid_token", "the activation token is not valid: it is unknown or was replaced"
    )


def not_managed() -> ActivationError:
    return ActivationError(404, "not_managed", "this device is not managed for this tenant")


@dataclass
class Result:
    status: str  # "active" or "pending_approval"
    device: Device
    credential: str = ""
    request_id: int | None = None
    pickup_token: str = ""
    matrix: dict = field(default_factory=dict)


@dataclass
class Request:
    method: str
    mdm_id: str = ""
    token: str = ""
    tenant_id: str = ""
    default_channel: str = ""
    source_ip: str | None = None


def activate(request: Request, now=None) -> Result:
    """Raises ActivationError; stores nothing before every check on the request passed."""
    tenant, integrations = _authority(request, now)

    classified = adhoc.classify(request.mdm_id)
    if classified is None:
        raise ActivationError(
            400,
            "invalid_mdm_id",
            "mdm_id: expected a MobileIron Core device UUID, a Cloud device id or a UDID",
            "mdm_id",
        )
    kind, value = classified
    product = adhoc.KIND_OF_PRODUCT[kind]
    candidates = [i for i in integrations if i.kind == product]
    if not candidates:
        if request.method == CONFIG:
            raise not_managed()
        expected = "device UUID" if integrations[0].kind == Integration.CORE else "device id"
        raise ActivationError(
            400, "invalid_mdm_id", f"mdm_id: this MDM names devices by {expected}", "mdm_id"
        )

    device = _find_or_bring_in(request, tenant, candidates, kind, value)
    return _grant(request, tenant, device)


def _authority(request: Request, now) -> tuple[Tenant, list[Integration]]:
    """The tenant and the integrations the request may activate a device of."""
    if request.method == LINK:
        try:
            token = tokens.resolve_link(request.token, now)
        except tokens.TokenInvalid:
            raise invalid_token() from None
        except tokens.TokenExpired:
            raise ActivationError(
                401, "expired_token", "the activation link has expired: ask for a new one"
            ) from None
    elif request.method == CODE:
        try:
            token = tokens.resolve_code(request.token)
        except tokens.TokenInvalid:
            raise invalid_token() from None
    elif request.method == CONFIG:
        return _config_authority(request)
    else:
        raise ActivationError(400, "invalid_request", "method: unknown", "method")

    # A tenant id sent alongside a token must be the token's own.
    if request.tenant_id and request.tenant_id != token.tenant.tenant_id:
        raise invalid_token()
    return token.tenant, [token.integration]


def _config_authority(request: Request) -> tuple[Tenant, list[Integration]]:
    if request.default_channel:
        channel = request.default_channel.strip().rstrip("/")
        if channel != settings.BASTION_PUBLIC_URL:
            raise ActivationError(
                400,
                "invalid_channel",
                "defaultchannel: this is not the address of this console",
                "defaultchannel",
            )
    tenant = Tenant.objects.filter(tenant_id=request.tenant_id).first()
    if tenant is None:
        raise ActivationError(401, "invalid_tenant", "tenantid: not valid", "tenantid")
    integrations = list(Integration.objects.filter(tenant=tenant).select_related("tenant"))
    if not integrations:
        raise not_managed()
    return tenant, integrations


def _find_or_bring_in(request: Request, tenant, integrations, kind: str, value: str) -> Device:
    known = list(adhoc.known_devices(tenant, integrations, kind, value)[:2])
    if len(known) > 1:
        raise _ambiguous()
    if known:
        return known[0]

    try:
        found = adhoc.look_up(tenant, integrations, kind, value)
    except adhoc.RateLimited:
        raise ActivationError(
            429, "rate_limited", "too many activations of unknown devices: try again in a minute"
        ) from None
    except adhoc.Ambiguous:
        raise _ambiguous() from None
    except adhoc.MdmUnavailable:
        raise ActivationError(
            503, "mdm_unavailable", "the MDM could not be asked about this device: try again"
        ) from None
    if found is None:
        raise not_managed()

    device = adhoc.bring_in(found)
    if device is None and request.method == CODE:
        device = adhoc.place_in_default_group(found)
    if device is None:
        raise not_managed()
    return device


def _ambiguous() -> ActivationError:
    return ActivationError(
        409,
        "ambiguous_device",
        "this device id matches devices of two MDMs: activate with that MDM's link or code",
    )


def _grant(request: Request, tenant: Tenant, device: Device) -> Result:
    agent_kind = AGENT_OF_METHOD[request.method]
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("group").get(pk=device.pk)
        has_credential = DeviceCredential.objects.filter(
            device=device, revoked_at__isnull=True
        ).exists()
        taken = has_credential or device.state == Device.ACTIVE
        if taken and ActivationSettings.for_tenant(tenant).require_reactivation_approval:
            return _hold(request, tenant, device, agent_kind)

        credential = _issue(device, agent_kind, request.method, actor="agent", ip=request.source_ip)
    return Result("active", device, credential=credential, matrix=matrix_for(device))


def _issue(device: Device, agent_kind: str, method: str, actor: str, ip=None) -> str:
    """Ends the device's old credentials and gives it a new one (inside a transaction)."""
    revoked = DeviceCredential.revoke_for([device.pk])
    _, credential = DeviceCredential.issue(device)
    now = timezone.now()
    device.state = Device.ACTIVE
    device.agent_kind = agent_kind
    device.activated_at = now
    device.save(update_fields=["state", "agent_kind", "activated_at"])
    AuditEntry.objects.create(
        tenant_id=device.tenant_id,
        actor=actor,
        action="device.activated",
        object_type="device",
        object_id=str(device.pk),
        detail={"method": method, "agent": agent_kind, "credentials_revoked": revoked},
        source_ip=ip,
    )
    log.info("device activated device=%s method=%s revoked=%d", device.pk, method, revoked)

    # The last sync may have found a flagged profile or a marked app on this device:
    # now that an agent protects it, those threats are raised through its matrix.
    from bastion.threats.inventory import raise_for_devices

    raise_for_devices(device.tenant_id, [device.pk])
    return credential


def _hold(request: Request, tenant, device: Device, agent_kind: str) -> Result:
    pending = ReactivationRequest.objects.filter(
        device=device, status=ReactivationRequest.PENDING
    ).count()
    if pending >= MAX_PENDING_PER_DEVICE:
        raise ActivationError(
            429, "too_many_requests", "this device already waits for an administrator"
        )

    pickup = secrets.token_urlsafe(32)
    held = ReactivationRequest.objects.create(
        tenant=tenant,
        device=device,
        method=request.method,
        agent_kind=agent_kind,
        pickup_hash=token_hash(pickup),
        source_ip=request.source_ip,
    )
    AuditEntry.objects.create(
        tenant=tenant,
        actor="agent",
        action="device.reactivation_requested",
        object_type="device",
        object_id=str(device.pk),
        detail={"request": held.pk, "method": request.method},
        source_ip=request.source_ip,
    )
    log.info("re-activation held device=%s request=%s", device.pk, held.pk)
    return Result("pending_approval", device, request_id=held.pk, pickup_token=pickup)


def reactivate_with_credential(device: Device, ip=None) -> Result:
    """A device proving itself with its own credential gets a new one at once."""
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("group").get(pk=device.pk)
        agent_kind = device.agent_kind or Device.AGENT_STANDALONE
        credential = _issue(device, agent_kind, CREDENTIAL, actor="agent", ip=ip)
    return Result("active", device, credential=credential, matrix=matrix_for(device))


def collect(request_id: int, pickup_token: str) -> Result:
    """The agent that made a held request collects its credential once approved."""
    held = (
        ReactivationRequest.objects.select_related("device")
        .filter(pk=request_id if isinstance(request_id, int) else -1)
        .first()
    )
    if held is None or not secrets.compare_digest(held.pickup_hash, token_hash(pickup_token)):
        raise ActivationError(401, "invalid_request", "unknown request or pickup token")
    if held.status == ReactivationRequest.PENDING:
        return Result("pending_approval", held.device, request_id=held.pk)
    if held.status == ReactivationRequest.COLLECTED:
        raise ActivationError(401, "invalid_request", "this approval was already collected")
    if held.status != ReactivationRequest.APPROVED or held.device.state == Device.REMOVED:
        raise ActivationError(403, "rejected", "an administrator did not approve this activation")

    with transaction.atomic():
        claimed = ReactivationRequest.objects.filter(
            pk=held.pk, status=ReactivationRequest.APPROVED
        ).update(status=ReactivationRequest.COLLECTED, collected_at=timezone.now())
        if not claimed:
            raise ActivationError(401, "invalid_request", "this approval was already collected")
        device = Device.objects.select_for_update().select_related("group").get(pk=held.device_id)
        credential = _issue(device, held.agent_kind, held.method, actor="agent")
    return Result("active", device, credential=credential, matrix=matrix_for(device))


@transaction.atomic
def decide(tenant: Tenant, request_id: int, approve: bool, actor: str, ip=None):
    """An administrator approves or rejects a held re-activation (tenant-scoped)."""
    held = (
        ReactivationRequest.objects.select_for_update().filter(pk=request_id, tenant=tenant).first()
    )
    if held is None:
        raise LookupError("request: no such re-activation request in this tenant")
    if held.status != ReactivationRequest.PENDING:
        raise ValueError(f"request: already {held.get_status_display().lower()}")

    held.status = ReactivationRequest.APPROVED if approve else ReactivationRequest.REJECTED
    held.decided_at = timezone.now()
    held.decided_by = actor[:150]
    held.save(update_fields=["status", "decided_at", "decided_by"])
    AuditEntry.objects.create(
        tenant=tenant,
        actor=actor[:150],
        action="device.reactivation_" + ("approved" if approve else "rejected"),
        object_type="device",
        object_id=str(held.device_id),
        detail={"request": held.pk},
        source_ip=ip,
    )
    return held


def matrix_for(device: Device) -> dict:
    """The Threat Response Matrix the agent gets for its group, as GET /matrix gives it."""
    from bastion.threats.device_api import agent_matrix

    body, tag = agent_matrix(device)
    group = device.group
    return {"group": {"id": group.pk, "name": group.name}, "etag": tag, **body}
