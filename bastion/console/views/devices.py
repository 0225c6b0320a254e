"""Devices: the paged inventory and one device's page."""

from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from bastion.api.models import DeviceCredential
from bastion.console.views import threat_data
from bastion.console.views.base import console_view, paginate, query_without_page
from bastion.inventory.models import ConsoleGroup, Device
from bastion.mdm.models import Integration

SORTS = {
    "name": "name",
    "-name": "-name",
    "seen": "last_checkin",
    "-seen": "-last_checkin",
    "os": "os_version",
    "-os": "-os_version",
    "group": "group__name",
    "-group": "-group__name",
}


@console_view
def device_list(request):
    tenant = request.tenant
    devices = Device.objects.filter(tenant=tenant).select_related("group", "integration", "user")

    state = request.GET.get("state", "")
    if state in dict(Device.STATES):
        devices = devices.filter(state=state)
    else:
        state = ""
        devices = devices.exclude(state=Device.REMOVED)

    platform = request.GET.get("platform", "")
    if platform in dict(Device.PLATFORMS):
        devices = devices.filter(platform=platform)

    group = request.GET.get("group", "")
    if group.isdigit():
        devices = devices.filter(group_id=int(group))

    integration = request.GET.get("integration", "")
    if integration.isdigit():
        devices = devices.filter(integration_id=int(integration))

    search = request.GET.get("q", "").strip()[:100]
    if search:
        devices = devices.filter(
            Q(name__icontains=search) | Q(model__icontains=search) | Q(mdm_id__iexact=search)
        )

    sort = request.GET.get("sort", "name")
    devices = devices.order_by(SORTS.get(sort, "name"), "pk")

    context = {
        "page": paginate(request, devices),
        "query": query_without_page(request),
        "states": Device.STATES,
        "platforms": Device.PLATFORMS,
        "groups": ConsoleGroup.objects.filter(tenant=tenant).order_by("name"),
        "integrations": Integration.objects.filter(tenant=tenant).order_by("name"),
        "filters": {
            "state": state,
            "platform": platform,
            "group": group,
            "integration": integration,
            "q": search,
            "sort": sort,
        },
    }
    return render(request, "console/devices.html", context)


@console_view
def device_detail(request, device_id: int):
    device = get_object_or_404(
        Device.objects.select_related("group", "integration", "user"),
        tenant=request.tenant,
        pk=device_id,
    )
    apps = device.installed_apps.select_related("app").order_by("app__name", "app__identifier")
    profiles = device.installed_profiles.select_related("profile").order_by("profile__name")
    credentials = DeviceCredential.objects.filter(device=device).order_by("-created_at")[:5]
    context = {
        "device": device,
        "apps": apps,
        "profiles": profiles,
        "credentials": credentials,
        "threats": threat_data.device_threats(request.tenant, device),
        "placement": placement(device),
        "matrix": threat_data.device_matrix(device),
    }
    return render(request, "console/device.html", context)


def placement(device: Device) -> str:
    """Why the device is in its group, in words an administrator can check in the MDM."""
    group = device.group
    if group.is_default:
        return (
            "In the Default Group: no sync has placed it in a group of a selected "
            "label or device group yet."
        )
    if group.priority is None:
        return f"In {group.name}, which is no longer selected; the next sync moves it."
    return (
        f"In {group.name}: of the selected groups it belongs to in "
        f"{device.integration.name if device.integration else 'its MDM'}, this one has the "
        f"highest priority (position {group.priority + 1})."
    )
