"""Activation in the device API: agents join with a link token, a managed app config or an
MTD activation code, and re-activate with their own credential."""

from ninja import Field, Router, Schema

from bastion.activation import engine
from bastion.threats import ratelimit

router = Router(tags=["activation"])

ERRORS = frozenset({400, 401, 403, 404, 409, 429, 503})


class ActivateIn(Schema):
    token: str | None = Field(None, max_length=1024, description="Activation link token.")
    activation_code: str | None = Field(
        None, max_length=2048, description="MTD activation code (MDM built-in agent)."
    )
    mdm_id: str | None = Field(
        None, max_length=128, description="The device's MDM id, the link's MDM_ID value."
    )
    uuid: str | None = Field(None, max_length=128, description="Managed app config: device id.")
    MDMDeviceID: str | None = Field(
        None, max_length=128, description="Managed app config of newer agents: device id."
    )
    tenantid: str | None = Field(None, max_length=64, description="Managed app config.")
    defaultchannel: str | None = Field(None, max_length=500, description="Managed app config.")


class GroupOut(Schema):
    id: int
    name: str


class ActivatedOut(Schema):
    status: str
    device_id: int
    tenant_id: str
    agent_kind: str
    credential: str = Field(description="The device's own credential, shown only now.")
    matrix: dict


class PendingOut(Schema):
    status: str
    request_id: int
    pickup_token: str = Field(
        "", description="Send it with the request id to collect the credential once approved."
    )


class ErrorOut(Schema):
    error: str
    message: str
    field: str = ""


class PickupIn(Schema):
    request_id: int
    pickup_token: str = Field(max_length=128)


def _source_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _answer(result: engine.Result):
    if result.status == "pending_approval":
        return 202, {
            "status": result.status,
            "request_id": result.request_id,
            "pickup_token": result.pickup_token,
        }
    device = result.device
    return 200, {
        "status": result.status,
        "device_id": device.pk,
        "tenant_id": device.tenant.tenant_id,
        "agent_kind": device.agent_kind,
        "credential": result.credential,
        "matrix": result.matrix,
    }


def _error(error: engine.ActivationError):
    return error.status, {"error": error.code, "message": error.message, "field": error.field}


def _request_of(payload: ActivateIn, ip) -> engine.Request:
    """Which way in the payload takes; raises ActivationError on a mixed or empty one."""
    given = [name for name in ("token", "activation_code") if getattr(payload, name)]
    if len(given) > 1:
        raise engine.ActivationError(
            400, "invalid_request", "send either token or activation_code, not both", given[1]
        )
    config_id = payload.MDMDeviceID or payload.uuid
    if given:
        method = engine.LINK if given[0] == "token" else engine.CODE
        if not payload.mdm_id:
            raise engine.ActivationError(400, "invalid_request", "mdm_id: required", "mdm_id")
        return engine.Request(
            method=method,
            token=getattr(payload, given[0]),
            mdm_id=payload.mdm_id,
            tenant_id=payload.tenantid or "",
            source_ip=ip,
        )

    if not payload.tenantid:
        raise engine.ActivationError(
            400,
            "invalid_request",
            "send a link token, an activation code, or tenantid with uuid or MDMDeviceID",
            "tenantid",
        )
    if not config_id:
        raise engine.ActivationError(400, "invalid_request", "uuid: required", "uuid")
    return engine.Request(
        method=engine.CONFIG,
        mdm_id=config_id,
        tenant_id=payload.tenantid,
        default_channel=payload.defaultchannel or "",
        source_ip=ip,
    )


@router.post(
    "/activate",
    auth=None,
    response={200: ActivatedOut, 202: PendingOut, ERRORS: ErrorOut},
    summary="Activate an agent",
)
def activate(request, payload: ActivateIn):
    try:
        result = engine.activate(_request_of(payload, _source_ip(request)))
    except engine.ActivationError as error:
        return _error(error)
    return _answer(result)


@router.post(
    "/activate/pickup",
    auth=None,
    response={200: ActivatedOut, 202: PendingOut, ERRORS: ErrorOut},
    summary="Collect the credential of an approved re-activation",
)
def pickup(request, payload: PickupIn):
    try:
        result = engine.collect(payload.request_id, payload.pickup_token)
    except engine.ActivationError as error:
        return _error(error)
    return _answer(result)


@router.post(
    "/reactivate",
    response={200: ActivatedOut, ERRORS: ErrorOut},
    summary="Re-activate with the device's own credential",
)
def reactivate(request):
    # Each call issues a credential: the device's request limit keeps a stolen or looping
    # agent from minting them without end.
    wait = ratelimit.hit(request.device.pk)
    if wait is not None:
        return _error(
            engine.ActivationError(429, "rate_limited", "too many requests from this device")
        )
    result = engine.reactivate_with_credential(request.device, ip=_source_ip(request))
    return _answer(result)
