"""Activation in the admin API: codes, links, files, re-activation approvals, emails."""

from datetime import datetime

from django.http import HttpResponse
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from bastion.activation import engine, files, services
from bastion.activation.models import ReactivationRequest
from bastion.api.auth import require_admin_role
from bastion.mdm.models import Integration

router = Router(tags=["activation"])


def _integration(request, integration_id: int) -> Integration:
    integration = (
        Integration.objects.select_related("tenant")
        .filter(pk=integration_id, tenant=request.tenant)
        .first()
    )
    if integration is None:
        raise HttpError(404, "no such MDM integration in this tenant")
    return integration


def _actor(request) -> str:
    return request.admin.get_username()


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class CodeOut(Schema):
    code: str
    key_id: str
    created_at: datetime
    address: str = Field(description="The Bastion address the code sends devices to.")
    stale: bool = Field(description="The address is no longer Bastion's public URL: rotate.")


class LinkOut(Schema):
    link: str
    token: str
    key_id: str
    mdm_id_variable: str
    expires_at: datetime | None
    expires_shown: str
    expired: bool


class RegenerateIn(Schema):
    expires_at: str | None = Field(
        None, max_length=64, description="ISO 8601; without an offset it is read in time_zone."
    )
    days: int | None = None
    time_zone: str | None = Field(None, max_length=64)


class SettingsIn(Schema):
    require_reactivation_approval: bool | None = None
    email_subject: str | None = Field(None, max_length=200)
    email_html: str | None = Field(None, max_length=50_000)


@router.get("/integrations/{integration_id}/activation", summary="Activation overview")
def overview(request, integration_id: int):
    return services.summary(_integration(request, integration_id))


@router.get(
    "/integrations/{integration_id}/activation/code",
    response=CodeOut,
    summary="Show the MTD activation code in full (audited)",
)
def show_code(request, integration_id: int):
    require_admin_role(request)
    return services.show_code(_integration(request, integration_id), _actor(request), _ip(request))


@router.post(
    "/integrations/{integration_id}/activation/code/rotate",
    response=CodeOut,
    summary="Rotate the MTD activation code",
)
def rotate_code(request, integration_id: int):
    require_admin_role(request)
    integration = _integration(request, integration_id)
    return services.rotate_code(integration, _actor(request), _ip(request))


@router.get(
    "/integrations/{integration_id}/activation/link",
    response=LinkOut,
    summary="Show the activation link in full (audited)",
)
def show_link(request, integration_id: int):
    require_admin_role(request)
    return services.show_link(_integration(request, integration_id), _actor(request), _ip(request))


@router.post(
    "/integrations/{integration_id}/activation/link/regenerate",
    response=LinkOut,
    summary="Regenerate the activation link",
)
def regenerate_link(request, integration_id: int, payload: RegenerateIn):
    require_admin_role(request)
    integration = _integration(request, integration_id)
    try:
        return services.regenerate_link(
            integration,
            _actor(request),
            _ip(request),
            expires_at=payload.expires_at,
            days=payload.days,
            time_zone=payload.time_zone,
        )
    except ValueError as error:
        raise HttpError(400, str(error)) from None


@router.get(
    "/integrations/{integration_id}/activation/files/{name}",
    summary="Download a managed app config, the Android XML or the email snippet",
)
def download(request, integration_id: int, name: str):
    integration = _integration(request, integration_id)
    if name not in files.FILES:
        raise HttpError(404, f"name: choose one of {', '.join(files.FILES)}")
    if name in files.SECRET_FILES:
        # It carries the MTD activation code: as much a secret as showing the code.
        require_admin_role(request)
    rendered = services.download(integration, name, _actor(request), _ip(request))
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    return response


@router.get(
    "/integrations/{integration_id}/activation/config-table",
    summary="The managed app config as key, type and value rows",
)
def config_table(request, integration_id: int, release: str = "current"):
    integration = _integration(request, integration_id)
    try:
        return services.config_table(integration, release)
    except ValueError as error:
        raise HttpError(400, str(error)) from None


@router.get("/activation/requests", summary="Re-activations waiting for approval")
def requests(request, status: str = "pending"):
    valid = {value for value, _ in ReactivationRequest.STATUSES}
    if status not in valid:
        raise HttpError(400, f"status: choose one of {', '.join(sorted(valid))}")
    return services.pending_requests(request.tenant, status)


def _decide(request, request_id: int, approve: bool):
    require_admin_role(request)
    try:
        held = engine.decide(request.tenant, request_id, approve, _actor(request), _ip(request))
    except LookupError as error:
        raise HttpError(404, str(error)) from None
    except ValueError as error:
        raise HttpError(409, str(error)) from None
    return services.request_view(held)


@router.post("/activation/requests/{request_id}/approve", summary="Approve a re-activation")
def approve(request, request_id: int):
    return _decide(request, request_id, True)


@router.post("/activation/requests/{request_id}/reject", summary="Reject a re-activation")
def reject(request, request_id: int):
    return _decide(request, request_id, False)


@router.get("/activation/emails", summary="Activation emails: sent, pending and failed")
def email_log(request, status: str | None = None, limit: int = 100):
    return services.email_log(request.tenant, status, limit)


@router.get("/activation/settings", summary="The tenant's activation settings")
def get_settings(request):
    return services.settings_view(request.tenant)


@router.put("/activation/settings", summary="Change the tenant's activation settings")
def put_settings(request, payload: SettingsIn):
    require_admin_role(request)
    try:
        return services.update_settings(
            request.tenant, _actor(request), _ip(request), **payload.dict()
        )
    except ValueError as error:
        raise HttpError(400, str(error)) from None
