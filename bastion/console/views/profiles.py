"""The Profiles page: iOS profiles seen on devices, their devices, trust and distrust."""

from django.contrib import messages
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from bastion.console.views.base import client_ip, console_view, paginate, query_without_page
from bastion.inventory.models import Device, Profile
from bastion.mdm.services import InvalidInput
from bastion.threats import inventory, inventory_queries
from bastion.threats.inventory import UnknownObject
from bastion.threats.inventory_queries import PROFILE_SORTS, ProfileFilter

SORT_LABELS = {"name": "Profile", "detected_on": "Detected", "device_count": "Devices"}
LIST_KEYS = ("status", "type", "sort", "page")


def _sort_headers(request, sort: str) -> dict:
    """For each sortable column: the link that sorts by it, and the current direction.

    A click on the current column reverses it; another column starts ascending.
    """
    headers = {}
    for key in PROFILE_SORTS:
        params = request.GET.copy()
        params.pop("page", None)
        current = sort.removeprefix("-") == key
        descending = sort.startswith("-")
        params["sort"] = f"-{key}" if current and not descending else key
        direction = ""
        if current:
            direction = "descending" if descending else "ascending"
        headers[key] = {
            "label": SORT_LABELS[key],
            "query": params.urlencode(),
            "direction": direction,
        }
    return headers


@console_view
def profile_list(request):
    status = request.GET.get("status", "")
    kind = request.GET.get("type", "")
    sort = request.GET.get("sort", "") or "name"
    error = None
    try:
        profiles = inventory_queries.list_profiles(
            request.tenant, ProfileFilter(status=status or None, type=kind or None, sort=sort)
        )
    except InvalidInput as invalid:
        # A hand-edited link: say which parameter is wrong and show no rows rather than
        # silently dropping the filter and showing more than was asked for.
        error = str(invalid)
        profiles = Profile.objects.none()
        sort = "name"

    context = {
        "page": paginate(request, profiles),
        "query": query_without_page(request),
        "back": query_without_page(request) if error is None else "",
        "statuses": Profile.STATUSES,
        "filters": {"status": status, "type": kind, "sort": sort},
        "headers": _sort_headers(request, sort),
        "error": error,
    }
    return render(request, "console/profiles.html", context, status=400 if error else 200)


@console_view
def profile_detail(request, profile_id: int):
    try:
        profile = inventory_queries.get_profile(request.tenant, profile_id)
    except InvalidInput:
        raise Http404("No such profile.") from None

    devices = (
        Device.objects.filter(tenant=request.tenant, installed_profiles__profile=profile)
        .exclude(state=Device.REMOVED)
        .values(
            "pk",
            "mdm_id",
            "name",
            "model",
            "platform",
            "os_version",
            "state",
            "installed_profiles__installed_by_mdm",
        )
        .order_by("pk")
    )
    page = paginate(request, devices)
    states = dict(Device.STATES)
    rows = [
        {**row, "state_label": states.get(row["state"], row["state"]), "id": row["pk"]}
        for row in page
    ]
    context = {
        "profile": profile,
        "page": page,
        "rows": rows,
        "query": query_without_page(request),
    }
    return render(request, "console/profile.html", context)


def _back(request, profile_id: int):
    """Returns to the page the button was on: the profile's page, or the list with the same
    filters. Only known list parameters are kept, so the redirect can't go elsewhere."""
    if request.POST.get("from") == "detail":
        return redirect("console:profile", profile_id=profile_id)
    given = QueryDict(request.POST.get("back", "")[:500])
    kept = QueryDict(mutable=True)
    for key in LIST_KEYS:
        if given.get(key):
            kept[key] = given[key][:40]
    query = kept.urlencode()
    return redirect(reverse("console:profiles") + (f"?{query}" if query else ""))


def _decide(request, profile_id: int, decide, done: str):
    try:
        actor = request.user.get_username()
        profile = decide(request.tenant, profile_id, actor, client_ip(request))
    except UnknownObject:
        raise Http404("No such profile.") from None
    messages.success(request, done.format(name=profile.name or profile.identifier))
    return _back(request, profile.pk)


@require_POST
@console_view
def trust(request, profile_id: int):
    return _decide(request, profile_id, inventory.trust_profile, "{name} is now trusted.")


@require_POST
@console_view
def distrust(request, profile_id: int):
    return _decide(
        request,
        profile_id,
        inventory.distrust_profile,
        "{name} is now untrusted: devices that carry it raise an untrusted-profile threat.",
    )
