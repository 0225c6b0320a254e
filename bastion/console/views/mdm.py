"""Manage › MDM: the integrations, one integration's page, edit, remove, Sync now."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from bastion import crypto
from bastion.console.forms import PROBLEM_FIELDS, PROBLEM_TITLES, IntegrationForm, RemoveForm
from bastion.console.views import activation, activation_data
from bastion.console.views.base import audit, console_view, paginate
from bastion.console.views.dashboard import integrations_with_last_run
from bastion.inventory.models import Device
from bastion.mdm import services
from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.tasks import enqueue_sync

ACTIVE_RUN = [SyncRun.QUEUED, SyncRun.RUNNING]


def _integration(request, integration_id: int) -> Integration:
    return get_object_or_404(Integration, tenant=request.tenant, pk=integration_id)


@console_view
def mdm_list(request):
    context = {
        "integrations": integrations_with_last_run(request.tenant),
        "activation": activation_data.summary(request.tenant),
    }
    return render(request, "console/mdm_list.html", context)


def detail_context(integration: Integration) -> dict:
    return {
        "integration": integration,
        "groups": integration.selected_groups(),
        "targets": integration.action_targets.order_by("kind", "name"),
        "run": integration.runs.first(),
        "device_count": integration.devices.exclude(state=Device.REMOVED).count(),
    }


@console_view
def mdm_detail(request, integration_id: int):
    integration = _integration(request, integration_id)
    context = detail_context(integration)
    context.update(activation.section(request, integration))
    return render(request, "console/mdm_detail.html", context)


@require_POST
@console_view
def sync_now(request, integration_id: int):
    integration = _integration(request, integration_id)
    if integration.runs.filter(status__in=ACTIVE_RUN).exists():
        messages.info(request, "A sync of this MDM is already queued or running.")
    else:
        run = enqueue_sync(integration, SyncRun.MANUAL)
        audit(request, "sync_requested", "integration", integration.pk, run=run.pk)
        messages.success(request, "Sync queued.")
    return redirect("console:mdm_detail", integration_id=integration.pk)


@console_view
def sync_progress(request, integration_id: int):
    """The progress bar's fragment; htmx polls it while a run is queued or running."""
    integration = _integration(request, integration_id)
    run = integration.runs.first()
    return render(request, "console/_sync_progress.html", {"integration": integration, "run": run})


@console_view
def sync_history(request, integration_id: int):
    integration = _integration(request, integration_id)
    context = {"integration": integration, "page": paginate(request, integration.runs.all(), 25)}
    return render(request, "console/sync_history.html", context)


@console_view
def mdm_edit(request, integration_id: int):
    integration = _integration(request, integration_id)
    initial = {
        name: getattr(integration, name)
        for name in (
            "url",
            "username",
            "name",
            "sync_users",
            "mask_users",
            "email_ios",
            "email_android",
            "sync_interval_minutes",
        )
    }
    initial["set_synced_password"] = bool(integration.synced_password_hash)
    form = IntegrationForm(
        request.POST or None,
        initial=initial,
        tenant=request.tenant,
        kind=integration.kind,
        existing=integration,
    )
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = data["password"] or integration.password
        connection_changed = (
            data["url"].strip().rstrip("/") != integration.url
            or data["username"].strip() != integration.username
            or bool(data["password"])
        )
        if connection_changed:
            report = _test(integration.kind, data["url"].strip(), data["username"], password)
            if not report.ok:
                title = PROBLEM_TITLES.get(report.problem, "The connection test failed")
                form.add_error(PROBLEM_FIELDS.get(report.problem), f"{title}: {report.message}")
        if not form.errors:
            changed = _apply_edit(integration, data, password)
            audit(request, "mdm_changed", "integration", integration.pk, changed=changed)
            messages.success(request, "MDM settings saved.")
            return redirect("console:mdm_detail", integration_id=integration.pk)

    status = 400 if form.errors else 200
    return render(
        request,
        "console/mdm_edit.html",
        {"form": form, "integration": integration, "report": report},
        status=status,
    )


def _test(kind, url, username, password):
    connector = services.build_connector(kind, url, username, password)
    try:
        return connector.test_connection()
    finally:
        connector.close()


def _apply_edit(integration: Integration, data: dict, password: str) -> list[str]:
    from django.contrib.auth.hashers import make_password

    values = {
        "url": data["url"].strip().rstrip("/"),
        "username": data["username"].strip(),
        "name": data["name"].strip(),
        "sync_users": data["sync_users"],
        "mask_users": data["mask_users"],
        "email_ios": data["email_ios"] and not integration.tenant.anonymous_users,
        "email_android": data["email_android"] and not integration.tenant.anonymous_users,
        "sync_interval_minutes": data["sync_interval_minutes"],
    }
    changed = [name for name, value in values.items() if getattr(integration, name) != value]
    for name, value in values.items():
        setattr(integration, name, value)

    if data["set_synced_password"] and data["synced_password"]:
        integration.synced_password_hash = make_password(data["synced_password"])
        changed.append("synced_password")
    elif not data["set_synced_password"] and integration.synced_password_hash:
        integration.synced_password_hash = ""
        changed.append("synced_password")
    if data["password"]:
        integration.password_encrypted = crypto.encrypt(password)
        changed.append("password")
        # New credentials deserve a fresh try even after the MDM rejected the old ones.
        if integration.status == Integration.AUTH_FAILED:
            integration.status = Integration.IDLE
    integration.save()
    return changed


@console_view
def mdm_remove(request, integration_id: int):
    integration = _integration(request, integration_id)
    form = RemoveForm(request.POST or None, integration=integration)
    if request.method == "POST" and form.is_valid():
        undo = form.cleaned_data["undo_actions"] == "undo"
        Integration.objects.filter(pk=integration.pk).update(undo_actions_on_removal=undo)
        integration.undo_actions_on_removal = undo
        removed = services.remove_integration(integration)
        audit(
            request,
            "mdm_removed",
            "integration",
            integration_id,
            devices_removed=removed,
            undo_actions=undo,
        )
        messages.success(request, f"MDM removed; {removed} devices left the inventory.")
        return redirect("console:mdm_list")

    context = {
        "form": form,
        "integration": integration,
        "device_count": integration.devices.exclude(state=Device.REMOVED).count(),
        "group_count": integration.selected_groups().count(),
    }
    return render(request, "console/mdm_remove.html", context, status=400 if form.errors else 200)
