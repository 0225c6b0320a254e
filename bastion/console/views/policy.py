"""Policy: a group's Threat Response Matrix as an editable table, its draft and Deploy."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse

from bastion.console.views.base import audit, console_view
from bastion.inventory.models import ConsoleGroup, Device
from bastion.mdm.models import Integration
from bastion.mdm.services import InvalidInput
from bastion.threats.catalog import NO_DEVICE_ACTION, SEVERITIES, catalog
from bastion.threats.matrix import (
    BOOLEAN_FIELDS,
    HANDLED_ON_DEVICE,
    MITIGATIONS,
    NONE,
    deploy,
    draft_rows,
    matrix_for,
    set_row,
)
from bastion.threats.queries import matrix_summary

EDITABLE = ("enabled", "severity", "alert_user", "device_action", "mdm_action", "mitigation",
            "notify_admin")  # fmt: skip


def _group(request) -> ConsoleGroup:
    groups = ConsoleGroup.objects.filter(tenant=request.tenant).select_related("integration")
    wanted = request.GET.get("group") or request.POST.get("group") or ""
    group = groups.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    return group or ConsoleGroup.default_for(request.tenant)


def _posted_row(post, threat_id: str) -> dict:
    """A row as the form sent it, in the shapes set_row accepts."""
    row = {name: f"{threat_id}:{name}" in post for name in BOOLEAN_FIELDS}
    for name in ("severity", "device_action", "mitigation"):
        row[name] = post.get(f"{threat_id}:{name}", "")
    action = post.get(f"{threat_id}:mdm_action", "")
    row["mdm_action"] = int(action) if action.isdigit() else (action or None)
    return row


@console_view
def policy(request):
    group = _group(request)
    matrix = matrix_for(group)
    errors: dict[str, str] = {}
    posted = None

    if request.method == "POST" and request.POST.get("op") == "deploy":
        version = deploy(matrix, request.user.get_username())
        audit(request, "matrix_deployed", "console_group", group.pk, version=version.number)
        messages.success(request, f"Version {version.number} deployed to {group.name}.")
        return redirect(reverse("console:policy") + f"?group={group.pk}")

    if request.method == "POST":
        draft = draft_rows(matrix)
        posted = {}
        changed = []
        # One transaction: a row with a bad value leaves the whole stored draft as it was.
        with transaction.atomic():
            for threat_id, stored in draft.items():
                row = _posted_row(request.POST, threat_id)
                posted[threat_id] = row
                changes = {name: row[name] for name in EDITABLE if row[name] != stored.get(name)}
                if not changes:
                    continue
                try:
                    set_row(matrix, threat_id, changes)
                    changed.append(threat_id)
                except InvalidInput as error:
                    errors[threat_id] = f"{error.field}: {error.message}"
            if errors:
                transaction.set_rollback(True)
        if not errors:
            if changed:
                audit(request, "matrix_draft_changed", "console_group", group.pk, threats=changed)
                messages.success(request, "Draft saved. Deploy it to give it to the agents.")
            return redirect(reverse("console:policy") + f"?group={group.pk}")

    summary = matrix_summary(group)
    rows = _rows(summary, posted)
    is_core = group.integration is not None and group.integration.kind == Integration.CORE
    context = {
        "group": group,
        "groups": ConsoleGroup.objects.filter(tenant=request.tenant).order_by(
            "integration__name", "priority", "name"
        ),
        "summary": summary,
        "rows": rows,
        "errors": errors,
        "severities": SEVERITIES,
        "mitigations": MITIGATIONS,
        "is_core": is_core,
        "handled_on_device": HANDLED_ON_DEVICE,
        "differences": sum(1 for row in rows if row["changed"]),
        "devices": Device.objects.filter(group=group).exclude(state=Device.REMOVED).count(),
    }
    return render(request, "console/policy.html", context, status=400 if errors else 200)


def _rows(summary: dict, posted: dict | None) -> list[dict]:
    deployed = {row["threat_id"]: row for row in summary["rows"]}
    device_actions = catalog().device_actions
    rows = []
    for draft in summary["draft"]:
        threat = catalog().get(draft["threat_id"])
        shown = dict(draft)
        if posted and draft["threat_id"] in posted:
            # After a failed save, show what was typed, not what is stored.
            shown.update(posted[draft["threat_id"]])
        live = deployed[draft["threat_id"]]
        differs = [name for name in EDITABLE if draft.get(name) != live.get(name)]
        actions = {NO_DEVICE_ACTION: "None"}
        for platform in threat.platforms:
            actions.update(device_actions.get(platform, {}))
        rows.append(
            {
                **shown,
                "mdm_action_value": ""
                if shown["mdm_action"] in (None, NONE)
                else str(shown["mdm_action"]),
                "deployed": live,
                "differs": differs,
                "changed": bool(differs),
                "device_actions": sorted(actions.items()),
                "platforms": ", ".join(threat.platforms),
            }
        )
    return rows
