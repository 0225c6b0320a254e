"""The tenant's own settings and its audit log."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from bastion.console.views.base import audit, console_view, paginate, query_without_page
from bastion.tenancy.models import AuditEntry, Tenant


class TenantSettingsForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Environment name", help_text="Also the default synced password."
    )
    anonymous_users = forms.BooleanField(
        required=False,
        label="Anonymous users",
        help_text="Store no name and no email address for device users.",
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the environment a name.")
        if Tenant.objects.filter(name__iexact=name).exclude(pk=self.tenant.pk).exists():
            raise forms.ValidationError("Another environment already has this name.")
        return name


@console_view
def tenant_settings(request):
    tenant = request.tenant
    form = TenantSettingsForm(
        request.POST or None,
        tenant=tenant,
        initial={"name": tenant.name, "anonymous_users": tenant.anonymous_users},
    )
    if request.method == "POST" and form.is_valid():
        changed = {
            field: form.cleaned_data[field]
            for field in ("name", "anonymous_users")
            if getattr(tenant, field) != form.cleaned_data[field]
        }
        Tenant.objects.filter(pk=tenant.pk).update(**form.cleaned_data)
        if changed:
            audit(request, "tenant_settings_changed", "tenant", tenant.pk, changed=sorted(changed))
        messages.success(request, "Settings saved.")
        return redirect("console:tenant_settings")

    return render(request, "console/tenant_settings.html", {"form": form, "tenant": tenant})


@console_view
def audit_log(request):
    entries = AuditEntry.objects.filter(tenant=request.tenant).order_by("-created_at", "-pk")
    action = request.GET.get("action", "").strip()[:64]
    if action:
        entries = entries.filter(action=action)
    actor = request.GET.get("actor", "").strip()[:150]
    if actor:
        entries = entries.filter(actor=actor)
    actions = (
        AuditEntry.objects.filter(tenant=request.tenant)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
    context = {
        "page": paginate(request, entries),
        "query": query_without_page(request),
        "actions": actions,
        "filters": {"action": action, "actor": actor},
    }
    return render(request, "console/audit_log.html", context)
