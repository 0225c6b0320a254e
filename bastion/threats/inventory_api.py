"""Admin API routes for inventory threats: iOS profiles (trust, distrust) and apps marked
malicious. Mounted at /api/admin/v1/ behind admin auth."""

from typing import Any

from django.http import JsonResponse
from ninja import Body, Query, Router, Schema

from bastion.api.auth import require_admin_role
from bastion.mdm.services import InvalidInput
from bastion.threats import inventory, inventory_queries
from bastion.threats.inventory import UnknownObject

router = Router(tags=["inventory threats"])


class ProfileQuery(Schema):
    status: str | None = None
    type: str | None = None
    sort: str = "name"
    limit: int = 100
    offset: int = 0


def _error(error: InvalidInput) -> JsonResponse:
    status = 404 if isinstance(error, UnknownObject) else 422
    return JsonResponse({"detail": error.message, "field": error.field}, status=status)


def _actor(request) -> tuple[str, str | None]:
    return request.admin.get_username(), request.META.get("REMOTE_ADDR") or None


@router.get("/profiles", summary="iOS configuration profiles, filtered and sorted")
def list_profiles(request, filters: Query[ProfileQuery]):
    try:
        profiles = inventory_queries.list_profiles(
            request.tenant, inventory_queries.ProfileFilter(**filters.dict())
        )
    except InvalidInput as error:
        return _error(error)
    total = profiles.count()
    page = profiles[filters.offset : filters.offset + filters.limit]
    return {"total": total, "profiles": [inventory_queries.profile_summary(p) for p in page]}


@router.get("/profiles/{profile_id}", summary="One profile and the devices that carry it")
def get_profile(request, profile_id: int):
    try:
        profile = inventory_queries.get_profile(request.tenant, profile_id)
    except InvalidInput as error:
        return _error(error)
    return {
        **inventory_queries.profile_summary(profile),
        "devices": inventory_queries.profile_devices(request.tenant, profile),
    }


@router.post("/profiles/{profile_id}/trust", summary="Trust a profile; closes its threats")
def trust(request, profile_id: int):
    require_admin_role(request)
    try:
        profile = inventory.trust_profile(request.tenant, profile_id, *_actor(request))
    except InvalidInput as error:
        return _error(error)
    return {"id": profile.pk, "status": profile.status}


@router.post("/profiles/{profile_id}/distrust", summary="Distrust a profile; raises threats")
def distrust(request, profile_id: int):
    require_admin_role(request)
    try:
        profile = inventory.distrust_profile(request.tenant, profile_id, *_actor(request))
    except InvalidInput as error:
        return _error(error)
    return {"id": profile.pk, "status": profile.status}


@router.get("/malicious-apps", summary="Apps marked malicious, newest first")
def list_marks(request):
    marks = inventory_queries.list_marks(request.tenant)
    return {"marks": [inventory_queries.mark_summary(mark) for mark in marks]}


@router.post("/malicious-apps", summary="Mark an app malicious by platform and identifier")
def mark(request, body: Body[dict[str, Any]]):
    require_admin_role(request)
    unknown = set(body) - {"platform", "identifier", "reason"}
    if unknown:
        field = sorted(unknown)[0]
        return JsonResponse({"detail": "unknown field", "field": field}, status=422)
    try:
        found, raised = inventory.mark_app_malicious(
            request.tenant,
            body.get("platform"),
            body.get("identifier"),
            *_actor(request),
            reason=body.get("reason", ""),
        )
    except InvalidInput as error:
        return _error(error)
    return JsonResponse({**inventory_queries.mark_summary(found), "raised": raised}, status=201)


@router.delete("/malicious-apps/{mark_id}", summary="Unmark an app; closes its threats")
def unmark(request, mark_id: int):
    require_admin_role(request)
    try:
        found = inventory_queries.get_mark(request.tenant, mark_id)
        mitigated = inventory.unmark_app(
            request.tenant, found.platform, found.identifier, *_actor(request)
        )
    except InvalidInput as error:
        return _error(error)
    return {"id": mark_id, "mitigated": mitigated}
