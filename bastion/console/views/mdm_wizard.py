"""Add MDM in the guide's three steps, and the group selector it shares with the edit page.

What the administrator typed is kept in the session between steps (passwords encrypted
with the integration key), so no step loses anything and nothing is stored until Finish.
"""

import logging

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from bastion import crypto
from bastion.console.forms import (
    PROBLEM_FIELDS,
    PROBLEM_TITLES,
    PROVIDERS,
    IntegrationForm,
    ProviderForm,
)
from bastion.console.views.base import audit, console_view
from bastion.mdm import services
from bastion.mdm.connectors.base import MdmError, MdmGroup
from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.targets import SELECTED_FOR_SYNC
from bastion.mdm.tasks import enqueue_sync

log = logging.getLogger(__name__)

WIZARD = "mdm_wizard"
KEPT_FIELDS = [
    "url",
    "username",
    "name",
    "sync_users",
    "set_synced_password",
    "mask_users",
    "email_ios",
    "email_android",
    "sync_interval_minutes",
]
NO_ATTRIBUTE = "rule is not a custom attribute equal to 1"


def _draft(request) -> dict | None:
    draft = request.session.get(WIZARD)
    if not draft or draft.get("tenant") != request.tenant.pk:
        return None
    return draft


def _save(request, draft: dict) -> None:
    request.session[WIZARD] = draft
    request.session.modified = True


@console_view
def choose_provider(request):
    form = ProviderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _save(request, {"tenant": request.tenant.pk, "kind": form.cleaned_data["provider"]})
        return redirect("console:mdm_setup")
    return render(
        request, "console/mdm_wizard_provider.html", {"form": form, "providers": PROVIDERS}
    )


@console_view
def setup(request):
    draft = _draft(request)
    if draft is None:
        return redirect("console:mdm_add")

    kind = draft["kind"]
    kept = "password" in draft
    if request.method != "POST":
        form = IntegrationForm(
            initial=draft.get("form") or {"sync_users": True, "sync_interval_minutes": 240},
            tenant=request.tenant,
            kind=kind,
            password_kept=kept,
        )
        return _render_setup(request, form, draft, None)

    form = IntegrationForm(request.POST, tenant=request.tenant, kind=kind, password_kept=kept)
    valid = form.is_valid()
    # Keep what was typed even when some of it is wrong, so nothing is lost.
    draft["form"] = {name: form.data.get(name, "") for name in KEPT_FIELDS}
    for name in ("sync_users", "set_synced_password", "mask_users", "email_ios", "email_android"):
        draft["form"][name] = name in form.data
    if valid and form.cleaned_data.get("password"):
        draft["password"] = crypto.encrypt(form.cleaned_data["password"])
    if valid and form.cleaned_data.get("synced_password"):
        draft["synced_password"] = crypto.encrypt(form.cleaned_data["synced_password"])
    _save(request, draft)
    if not valid:
        return _render_setup(request, form, draft, None)

    report = _test(kind, form.cleaned_data, crypto.decrypt(draft["password"]))
    if not report.ok:
        field = PROBLEM_FIELDS.get(report.problem)
        title = PROBLEM_TITLES.get(report.problem, "The connection test failed")
        form.add_error(field, f"{title}: {report.message}")
        return _render_setup(request, form, draft, report)

    if request.POST.get("op") == "next":
        draft.pop("listed", None)
        draft.pop("selected", None)
        _save(request, draft)
        return redirect("console:mdm_groups")
    return _render_setup(request, form, draft, report)


def _test(kind: str, data: dict, password: str):
    connector = services.build_connector(kind, data["url"].strip(), data["username"], password)
    try:
        return connector.test_connection()
    finally:
        connector.close()


def _render_setup(request, form, draft, report):
    context = {
        "form": form,
        "provider": dict((key, name) for key, name, _ in PROVIDERS)[draft["kind"]],
        "report": report,
        "problem_title": PROBLEM_TITLES.get(report.problem, "") if report else "",
        "default_password": request.tenant.default_synced_password(),
    }
    status = 400 if form.errors else 200
    return render(request, "console/mdm_wizard_setup.html", context, status=status)


@console_view
def choose_groups(request):
    draft = _draft(request)
    if draft is None or "password" not in draft:
        return redirect("console:mdm_add")

    values = draft["form"]
    connector = services.build_connector(
        draft["kind"], values["url"].strip(), values["username"], crypto.decrypt(draft["password"])
    )
    try:
        error = _load_listing(connector, draft, request.POST.get("space"))
        op = request.POST.get("op", "") if request.method == "POST" else ""
        if not error and op == "finish":
            return _finish(request, draft)
        if not error and op and op != "space":
            error = _apply_op(draft, op)
    finally:
        connector.close()
    _save(request, draft)

    context = {
        "draft": draft,
        "spaces": draft.get("spaces", []),
        "error": error,
        "action": reverse("console:mdm_groups"),
        "finish_label": "Finish",
        "space_fixed": False,
        **_selector(draft),
    }
    return render(request, "console/mdm_groups.html", context, status=400 if error else 200)


def _load_listing(connector, draft: dict, wanted_space: str | None) -> str:
    """Fills the draft with the MDM's spaces and the chosen space's groups; returns an error."""
    try:
        if "spaces" not in draft:
            draft["spaces"] = [[s.id, s.name, s.is_default] for s in connector.list_spaces()]
        space_ids = [space[0] for space in draft["spaces"]]
        if wanted_space and wanted_space not in space_ids:
            return "space: the MDM offers no such space."
        if wanted_space and wanted_space != draft.get("space_id"):
            draft.pop("listed", None)
            draft["selected"] = []
            draft["space_id"] = wanted_space
        if not draft.get("space_id"):
            space_id, _ = services.resolve_space(connector, "")
            draft["space_id"] = space_id
        draft["space_name"] = next(s[1] for s in draft["spaces"] if s[0] == draft["space_id"])
        if "listed" not in draft:
            draft["listed"] = _listing(connector.list_groups(draft["space_id"]))
            draft.setdefault("selected", [])
    except services.InvalidInput as error:
        return f"{error.field}: {error.message}"
    except MdmError as error:
        log.warning("listing MDM groups failed: %s", type(error).__name__)
        return f"The MDM could not list its groups: {error}"
    return ""


def _listing(groups: list[MdmGroup]) -> list[dict]:
    return [
        {
            "id": group.id,
            "name": group.name,
            "count": group.device_count,
            "blocker": group.target_blocker,
            "attribute": group.attribute,
        }
        for group in groups
    ]


def _apply_op(draft: dict, op: str) -> str:
    verb, _, group_id = op.partition(":")
    known = {group["id"] for group in draft["listed"]}
    selected = draft["selected"]
    if group_id not in known:
        return "groups: the MDM lists no such group."
    if verb == "add" and group_id not in selected:
        selected.append(group_id)
    elif verb == "remove" and group_id in selected:
        selected.remove(group_id)
    elif verb in ("up", "down") and group_id in selected:
        index = selected.index(group_id)
        other = index - 1 if verb == "up" else index + 1
        if 0 <= other < len(selected):
            selected[index], selected[other] = selected[other], selected[index]
    elif verb not in ("add", "remove", "up", "down"):
        return "groups: unknown request."
    return ""


def _selector(draft: dict) -> dict:
    """The available and selected columns, each group saying why it can't be an action target."""
    by_id = {group["id"]: group for group in draft.get("listed", [])}
    selected_ids = [group_id for group_id in draft.get("selected", []) if group_id in by_id]
    kind = draft.get("kind")

    def shown(group: dict, is_selected: bool) -> dict:
        reason = group["blocker"]
        if not reason and is_selected:
            reason = SELECTED_FOR_SYNC
        if not reason and kind == Integration.CLOUD and not group["attribute"]:
            reason = NO_ATTRIBUTE
        return {**group, "target_reason": reason}

    available = [shown(g, False) for g in by_id.values() if g["id"] not in selected_ids]
    selected = [shown(by_id[group_id], True) for group_id in selected_ids]
    return {"available": available, "selected": selected}


def _finish(request, draft: dict):
    by_id = {group["id"]: group for group in draft["listed"]}
    groups = [MdmGroup(id=gid, name=by_id[gid]["name"]) for gid in draft["selected"]]
    values = draft["form"]
    synced = ""
    if values.get("set_synced_password") and draft.get("synced_password"):
        synced = crypto.decrypt(draft["synced_password"])
    settings = services.IntegrationSettings(
        kind=draft["kind"],
        name=values["name"],
        url=values["url"],
        username=values["username"],
        password=crypto.decrypt(draft["password"]),
        space_id=draft["space_id"],
        space_name=draft["space_name"],
        sync_users=bool(values.get("sync_users")),
        synced_password=synced,
        mask_users=bool(values.get("mask_users")),
        email_ios=bool(values.get("email_ios")),
        email_android=bool(values.get("email_android")),
        sync_interval_minutes=int(values.get("sync_interval_minutes") or 240),
    )
    if not groups:
        return _groups_error(request, draft, "groups: select at least one group to sync.")
    try:
        integration = services.create_integration(request.tenant, settings, groups)
    except services.InvalidInput as error:
        return _groups_error(request, draft, f"{error.field}: {error.message}")

    request.session.pop(WIZARD, None)
    audit(
        request,
        "mdm_added",
        "integration",
        integration.pk,
        kind=integration.kind,
        groups=[group.id for group in groups],
    )
    enqueue_sync(integration, SyncRun.MANUAL)
    messages.success(request, "MDM added; the first sync has started.")
    return redirect("console:mdm_detail", integration_id=integration.pk)


def _groups_error(request, draft, error):
    context = {
        "draft": draft,
        "spaces": draft.get("spaces", []),
        "error": error,
        "action": reverse("console:mdm_groups"),
        "finish_label": "Finish",
        "space_fixed": False,
        **_selector(draft),
    }
    return render(request, "console/mdm_groups.html", context, status=400)


@console_view
def edit_groups(request, integration_id: int):
    """The same selector for an existing integration; its space stays as chosen."""
    integration = get_object_or_404(Integration, tenant=request.tenant, pk=integration_id)
    key = f"mdm_groups_{integration.pk}"
    draft = request.session.get(key)
    if request.method != "POST" or draft is None:
        draft = {
            "kind": integration.kind,
            "space_id": integration.space_id,
            "spaces": [[integration.space_id, integration.space_name, True]],
            "selected": list(integration.selected_groups().values_list("mdm_group_id", flat=True)),
        }

    connector = services.connector_for(integration)
    try:
        error = _load_listing(connector, draft, None)
    finally:
        connector.close()

    op = request.POST.get("op", "") if request.method == "POST" else ""
    if not error and op == "finish":
        by_id = {group["id"]: group for group in draft["listed"]}
        chosen = [MdmGroup(id=gid, name=by_id[gid]["name"]) for gid in draft["selected"]]
        if not chosen:
            error = "groups: select at least one group to sync."
        else:
            services.select_groups(integration, chosen)
            request.session.pop(key, None)
            audit(
                request,
                "mdm_groups_changed",
                "integration",
                integration.pk,
                groups=[group.id for group in chosen],
            )
            messages.success(request, "Groups saved; the next sync applies them.")
            return redirect("console:mdm_detail", integration_id=integration.pk)
    elif not error and op:
        error = _apply_op(draft, op)
    request.session[key] = draft

    context = {
        "draft": draft,
        "integration": integration,
        "spaces": draft["spaces"],
        "error": error,
        "action": reverse("console:mdm_edit_groups", args=[integration.pk]),
        "finish_label": "Save groups",
        "space_fixed": True,
        **_selector(draft),
    }
    return render(request, "console/mdm_groups.html", context, status=400 if error else 200)
