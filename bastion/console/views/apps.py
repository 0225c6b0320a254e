"""The Apps page: apps seen on devices, and administrators' malicious marks on them."""

from django.contrib import messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from bastion.console.views.base import client_ip, console_view, paginate, query_without_page
from bastion.inventory.models import Device
from bastion.mdm.services import InvalidInput
from bastion.threats import inventory, inventory_queries
from bastion.threats.inventory_models import MaliciousApp

LIST_KEYS = ("platform", "q", "malicious", "page")


def _apps(request):
    """The page's apps with `device_count`, `malicious` and the mark's reason, in one query."""
    marks = MaliciousApp.objects.filter(
        tenant=request.tenant, platform=OuterRef("platform"), identifier=OuterRef("identifier")
    )
    apps = inventory_queries.apps_with_marks(request.tenant).annotate(
        device_count=Count("installations", filter=~Q(installations__device__state=Device.REMOVED)),
        mark_reason=Subquery(marks.values("reason")[:1]),
    )
    platform = request.GET.get("platform", "")
    if platform in dict(Device.PLATFORMS):
        apps = apps.filter(platform=platform)
    search = request.GET.get("q", "").strip()[:100]
    if search:
        apps = apps.filter(Q(name__icontains=search) | Q(identifier__icontains=search))
    only_malicious = request.GET.get("malicious") == "1"
    if only_malicious:
        apps = apps.filter(malicious=True)
    apps = apps.order_by("-device_count", "name", "pk")
    filters = {"platform": platform, "q": search, "malicious": only_malicious}
    return apps, filters


def _render(request, error: str | None = None, status: int = 200):
    apps, filters = _apps(request)
    context = {
        "page": paginate(request, apps),
        "query": query_without_page(request),
        "back": query_without_page(request),
        "platforms": Device.PLATFORMS,
        "filters": filters,
        "error": error,
        "unseen_marks": _unseen_marks(request.tenant),
    }
    return render(request, "console/apps.html", context, status=status)


def _unseen_marks(tenant) -> list:
    """Marks on apps no device has reported yet: the list above can't show them."""
    return list(
        inventory_queries.list_marks(tenant)
        .filter(device_count=0)
        .values("platform", "identifier", "reason", "marked_at")[:50]
    )


@console_view
def app_list(request):
    return _render(request)


def _back(request):
    """The list with the filters the button was pressed under, and nothing else."""
    given = QueryDict(request.POST.get("back", "")[:500])
    kept = QueryDict(mutable=True)
    for key in LIST_KEYS:
        if given.get(key):
            kept[key] = given[key][:100]
    query = kept.urlencode()
    return redirect(reverse("console:apps") + (f"?{query}" if query else ""))


@require_POST
@console_view
def mark(request):
    try:
        _, raised = inventory.mark_app_malicious(
            request.tenant,
            request.POST.get("platform"),
            request.POST.get("identifier"),
            request.user.get_username(),
            source_ip=client_ip(request),
            reason=request.POST.get("reason", ""),
        )
    except InvalidInput as invalid:
        return _render(request, error=str(invalid), status=400)
    messages.success(
        request, f"Marked malicious: {raised} device(s) with it raised a malicious-app threat."
    )
    return _back(request)


@require_POST
@console_view
def unmark(request):
    try:
        mitigated = inventory.unmark_app(
            request.tenant,
            request.POST.get("platform"),
            request.POST.get("identifier"),
            request.user.get_username(),
            client_ip(request),
        )
    except InvalidInput as invalid:
        return _render(request, error=str(invalid), status=400)
    messages.success(request, f"Mark removed: {mitigated} open threat(s) closed.")
    return _back(request)
