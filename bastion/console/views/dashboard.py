"""The dashboard: what is happening in the tenant, at a glance, in a fixed number of queries."""

from django.db.models import Count, OuterRef, Subquery
from django.shortcuts import render

from bastion.console import charts
from bastion.console.views import threat_data
from bastion.console.views.base import console_view
from bastion.inventory.models import Device
from bastion.mdm.models import Integration, SyncRun

TOP_OS_VERSIONS = 12


def integrations_with_last_run(tenant):
    """The tenant's integrations, each with `.last_run` (or None), in two queries."""
    latest = SyncRun.objects.filter(integration=OuterRef("pk")).order_by("-created_at")
    integrations = list(
        Integration.objects.filter(tenant=tenant)
        .annotate(last_run_id=Subquery(latest.values("pk")[:1]))
        .order_by("name")
    )
    run_ids = [item.last_run_id for item in integrations if item.last_run_id]
    runs = SyncRun.objects.in_bulk(run_ids) if run_ids else {}
    for item in integrations:
        item.last_run = runs.get(item.last_run_id)
    return integrations


@console_view
def dashboard(request):
    tenant = request.tenant
    devices = Device.objects.filter(tenant=tenant).exclude(state=Device.REMOVED)

    by_state = dict(devices.values_list("state").annotate(n=Count("pk")).order_by())
    by_os = list(
        devices.values_list("platform", "os_version").annotate(n=Count("pk")).order_by("-n")
    )
    by_platform: dict[str, int] = {}
    for platform, _, count in by_os:
        by_platform[platform] = by_platform.get(platform, 0) + count
    platform_names = dict(Device.PLATFORMS)

    context = {
        "active": by_state.get(Device.ACTIVE, 0),
        "waiting": by_state.get(Device.WAITING, 0),
        "platform_chart": charts.horizontal_bars(
            [(platform_names.get(key, key), count) for key, count in sorted(by_platform.items())]
        ),
        "os_chart": charts.horizontal_bars(
            [
                (f"{platform_names.get(platform, platform)} {version or '?'}", count)
                for platform, version, count in by_os[:TOP_OS_VERSIONS]
            ]
        ),
        "integrations": integrations_with_last_run(tenant),
    }
    context.update(threat_data.dashboard_summary(tenant))
    return render(request, "console/dashboard.html", context)
