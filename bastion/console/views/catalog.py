"""Users and OS versions across the tenant's devices."""

from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import redirect, render

from bastion.console.models import ConsoleSettings
from bastion.console.views.base import (
    audit,
    below,
    console_view,
    paginate,
    query_without_page,
    version_key,
)
from bastion.inventory.models import Device, DeviceUser


@console_view
def user_list(request):
    users = (
        DeviceUser.objects.filter(tenant=request.tenant)
        .select_related("group")
        .annotate(device_count=Count("devices", filter=~Q(devices__state=Device.REMOVED)))
        .order_by("display_name", "last_name", "pk")
    )
    search = request.GET.get("q", "").strip()[:100]
    if search:
        # Masked users are found only by what the page shows of them: searching their
        # real name would let a search reveal what masking hides.
        users = users.filter(masked=False).filter(
            Q(email__icontains=search)
            | Q(display_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    context = {"page": paginate(request, users), "query": query_without_page(request), "q": search}
    return render(request, "console/users.html", context)


class MinimumForm(forms.Form):
    min_ios_version = forms.RegexField(
        regex=r"^(\d{1,4}(\.\d{1,4}){0,3})?$",
        required=False,
        max_length=32,
        label="Minimum iOS version",
        error_messages={"invalid": "Write a version such as 17.4 or 17.4.1."},
    )
    min_android_version = forms.RegexField(
        regex=r"^(\d{1,4}(\.\d{1,4}){0,3})?$",
        required=False,
        max_length=32,
        label="Minimum Android version",
        error_messages={"invalid": "Write a version such as 13 or 14.0."},
    )


@console_view
def os_risk(request):
    settings = ConsoleSettings.for_tenant(request.tenant)
    form = MinimumForm(
        request.POST or None,
        initial={
            "min_ios_version": settings.min_ios_version,
            "min_android_version": settings.min_android_version,
        },
    )
    if request.method == "POST" and form.is_valid():
        settings.min_ios_version = form.cleaned_data["min_ios_version"]
        settings.min_android_version = form.cleaned_data["min_android_version"]
        settings.save()
        audit(request, "os_minimum_changed", "tenant", request.tenant.pk, **form.cleaned_data)
        messages.success(request, "Minimum OS versions saved.")
        return redirect("console:os_risk")

    rows = (
        Device.objects.filter(tenant=request.tenant)
        .exclude(state=Device.REMOVED)
        .values_list("platform", "os_version")
        .annotate(n=Count("pk"))
        .order_by()
    )
    names = dict(Device.PLATFORMS)
    versions = []
    for platform, version, count in rows:
        minimum = settings.minimum_for(platform)
        versions.append(
            {
                "platform": names.get(platform, platform),
                "version": version,
                "count": count,
                "below": below(version, minimum),
                "minimum": minimum,
            }
        )
    versions.sort(key=lambda row: (row["platform"], version_key(row["version"])))
    context = {
        "form": form,
        "versions": versions,
        "at_risk": sum(row["count"] for row in versions if row["below"]),
    }
    return render(request, "console/os_risk.html", context)
