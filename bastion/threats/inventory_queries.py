"""Reading iOS profiles and malicious-app marks for the Profiles and Apps pages, the admin
API and the command line. Every function takes the tenant and filters by it."""

from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from bastion.inventory.models import App, Device, Profile
from bastion.mdm.services import InvalidInput
from bastion.tenancy.models import Tenant
from bastion.threats.inventory import UnknownObject, clean_id
from bastion.threats.inventory_models import MaliciousApp

PROFILE_SORTS = {
    "name": ("name", "identifier", "pk"),
    "detected_on": ("detected_on", "pk"),
    "device_count": ("device_count", "pk"),
}
TYPES = ("managed", "unmanaged")
MAX_LIMIT = 500


@dataclass
class ProfileFilter:
    status: str | None = None
    type: str | None = None
    sort: str = "name"
    limit: int = 100
    offset: int = 0


def list_profiles(tenant: Tenant, f: ProfileFilter) -> QuerySet:
    """The tenant's profiles with `device_count` (devices still in the inventory), filtered
    and sorted; `sort` is a key of PROFILE_SORTS, "-" first for descending."""
    if f.status and f.status not in dict(Profile.STATUSES):
        raise InvalidInput("status", "must be trusted, untrusted or suspicious")
    if f.type and f.type not in TYPES:
        raise InvalidInput("type", "must be managed or unmanaged")
    key = (f.sort or "name").removeprefix("-")
    if key not in PROFILE_SORTS:
        raise InvalidInput("sort", f"must be one of {', '.join(PROFILE_SORTS)}, '-' to reverse")
    if not 1 <= f.limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    if f.offset < 0:
        raise InvalidInput("offset", "must not be negative")

    profiles = Profile.objects.filter(tenant=tenant).annotate(
        device_count=Count("installations", filter=~Q(installations__device__state=Device.REMOVED))
    )
    if f.status:
        profiles = profiles.filter(status=f.status)
    if f.type:
        profiles = profiles.filter(managed=f.type == "managed")
    order = PROFILE_SORTS[key]
    if f.sort.startswith("-"):
        order = tuple(f"-{name}" for name in order)
    return profiles.order_by(*order)


def profile_summary(profile: Profile) -> dict:
    return {
        "id": profile.pk,
        "identifier": profile.identifier,
        "name": profile.name,
        "organization": profile.organization,
        "type": "managed" if profile.managed else "unmanaged",
        "status": profile.status,
        "detected_on": profile.detected_on,
        "device_count": getattr(profile, "device_count", None),
    }


def get_profile(tenant: Tenant, profile_id) -> Profile:
    pk = clean_id(profile_id, "profile_id")
    profile = list_profiles(tenant, ProfileFilter()).filter(pk=pk).first()
    if profile is None:
        raise UnknownObject("profile_id", f"no profile {pk} in this tenant")
    return profile


def profile_devices(tenant: Tenant, profile: Profile, limit: int = 100) -> list[dict]:
    """The devices in the inventory that carry the profile, first by id."""
    devices = (
        Device.objects.filter(tenant=tenant, installed_profiles__profile=profile)
        .exclude(state=Device.REMOVED)
        .order_by("pk")
        .values("pk", "mdm_id", "name", "model", "state", "installed_profiles__installed_by_mdm")
    )
    return [
        {
            "id": row["pk"],
            "mdm_id": row["mdm_id"],
            "name": row["name"],
            "model": row["model"],
            "state": row["state"],
            "installed_by_mdm": row["installed_profiles__installed_by_mdm"],
        }
        for row in devices[:limit]
    ]


def list_marks(tenant: Tenant) -> QuerySet:
    """The tenant's malicious-app marks with `device_count`, newest first."""
    carriers = (
        Device.objects.filter(
            tenant=tenant,
            installed_apps__app__platform=OuterRef("platform"),
            installed_apps__app__identifier=OuterRef("identifier"),
        )
        .exclude(state=Device.REMOVED)
        .order_by()
        .values("tenant")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        MaliciousApp.objects.filter(tenant=tenant)
        .annotate(device_count=Coalesce(Subquery(carriers, output_field=IntegerField()), 0))
        .order_by("-marked_at", "-pk")
    )


def mark_summary(mark: MaliciousApp) -> dict:
    return {
        "id": mark.pk,
        "platform": mark.platform,
        "identifier": mark.identifier,
        "reason": mark.reason,
        "marked_by": mark.marked_by,
        "marked_at": mark.marked_at,
        "device_count": getattr(mark, "device_count", None),
    }


def get_mark(tenant: Tenant, mark_id) -> MaliciousApp:
    pk = clean_id(mark_id, "mark_id")
    mark = MaliciousApp.objects.filter(tenant=tenant, pk=pk).first()
    if mark is None:
        raise UnknownObject("mark_id", f"no malicious-app mark {pk} in this tenant")
    return mark


def apps_with_marks(tenant: Tenant) -> QuerySet:
    """The tenant's apps annotated with `malicious` (for the Apps page's mark)."""
    marked = MaliciousApp.objects.filter(
        tenant=tenant, platform=OuterRef("platform"), identifier=OuterRef("identifier")
    )
    return App.objects.filter(tenant=tenant).annotate(malicious=Exists(marked))
