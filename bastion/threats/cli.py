"""This app's `bastion` subcommands: `bastion threats ...` and `bastion matrix ...`."""

import json

import click

from bastion.threats import inventory_cli


def register(main) -> None:
    """Adds this app's commands to the `bastion` command group."""
    main.add_command(threats)
    main.add_command(matrix)
    inventory_cli.register(main)


def _setup():
    from bastion.cli import migrate

    migrate()


def _emit(data, as_json: bool, text: str) -> None:
    from bastion.cli import emit

    emit(data, as_json, text)


def _audit(tenant, action: str, object_type: str, object_id, detail: dict) -> None:
    from bastion.tenancy.models import AuditEntry

    AuditEntry.objects.create(
        tenant=tenant,
        actor="cli",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
    )


@click.group()
def threats():
    """Threat events and their MDM actions."""


@threats.command(name="list")
@click.option("--tenant", "tenant_name")
@click.option("--since", type=click.DateTime(), help="Detected at or after (UTC).")
@click.option("--until", type=click.DateTime(), help="Detected before (UTC).")
@click.option("--severity")
@click.option("--threat", help="Threat id, e.g. arp_mitm.")
@click.option("--device", type=int, help="Device id.")
@click.option("--group", type=int, help="Console group id.")
@click.option("--state", type=click.Choice(["active", "mitigated"]))
@click.option("--outcome", type=click.Choice(["none", "on_device", "pending", "done", "failed"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def threats_list(tenant_name, as_json, **filters):
    """List threat events, newest first."""
    _setup()
    from datetime import UTC

    from bastion.cli import find_tenant
    from bastion.mdm.services import InvalidInput
    from bastion.threats.queries import EventFilter, event_summary, filter_events

    tenant = find_tenant(tenant_name)
    for key in ("since", "until"):
        if filters[key] is not None:
            filters[key] = filters[key].replace(tzinfo=UTC)
    try:
        events = filter_events(tenant, EventFilter(**filters))
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None
    rows = [event_summary(event) for event in events[: filters["limit"]]]
    lines = [
        f"{r['id']}\t{r['detected_at']:%Y-%m-%d %H:%M:%S %Z}\t{r['severity']}\t{r['threat_id']}"
        f"\tdevice {r['device']['id']}\t{r['state']}\t{r['outcome']}"
        for r in rows
    ]
    _emit(rows, as_json, "\n".join(lines) or "no threat event")


@threats.command(name="show")
@click.argument("event_id", type=int)
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def threats_show(event_id, tenant_name, as_json):
    """Show one event with its MDM actions."""
    _setup()
    from bastion.cli import find_tenant
    from bastion.threats.models import ThreatEvent
    from bastion.threats.queries import event_detail

    tenant = find_tenant(tenant_name)
    event = ThreatEvent.objects.filter(tenant=tenant, pk=event_id).first()
    if event is None:
        raise click.ClickException(f"no event {event_id} in tenant {tenant.name!r}")
    data = event_detail(event)
    lines = [
        f"{data['threat']} ({data['threat_id']}), {data['severity']}, {data['state']}",
        f"device {data['device']['id']} ({data['device']['mdm_id']}), "
        f"group {data['group']['name']}, matrix v{data['matrix_version']}",
    ]
    for action in data["actions"]:
        error = f" — {action['last_error']}" if action["last_error"] else ""
        lines.append(
            f"  action {action['id']}: {action['op']} {action['kind']} {action['target']} "
            f"{action['state']} after {action['attempts']} tries{error}"
        )
    _emit(data, as_json, "\n".join(lines))


@threats.command(name="retry")
@click.argument("action_id", type=int)
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def threats_retry(action_id, tenant_name, as_json):
    """Put a failed MDM action back in the queue."""
    _setup()
    from django.db import transaction

    from bastion.cli import find_tenant
    from bastion.threats.models import ResponseAction
    from bastion.threats.services import retry_action

    tenant = find_tenant(tenant_name)
    action = ResponseAction.objects.filter(tenant=tenant, pk=action_id).first()
    if action is None:
        raise click.ClickException(f"no action {action_id} in tenant {tenant.name!r}")
    with transaction.atomic():
        if not retry_action(action):
            raise click.ClickException(f"action {action_id} is {action.state}, not failed")
        _audit(tenant, "threat_action.retry", "response_action", action.pk, {})
    _emit({"id": action.pk, "state": "pending"}, as_json, f"Action {action_id} queued again")


@click.group()
def matrix():
    """Threat Response Matrices: show, edit the draft, deploy."""


def _group(tenant_name, key):
    from bastion.cli import find_tenant
    from bastion.mdm.services import InvalidInput
    from bastion.threats.queries import find_group

    tenant = find_tenant(tenant_name)
    try:
        return tenant, find_group(tenant, key)
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None


@matrix.command(name="show")
@click.argument("group")
@click.option("--tenant", "tenant_name")
@click.option("--draft", is_flag=True, help="Show the draft instead of the deployed rows.")
@click.option("--json", "as_json", is_flag=True)
def matrix_show(group, tenant_name, draft, as_json):
    """Show the matrix of GROUP (its id, its name, or "default")."""
    _setup()
    from bastion.threats.queries import matrix_summary

    _, found = _group(tenant_name, group)
    data = matrix_summary(found)
    rows = data["draft"] if draft else data["rows"]
    lines = [
        f"{data['group']['name']}: version {data['version']}"
        + (" (undeployed changes)" if data["has_draft"] else "")
    ]
    for row in rows:
        mark = "on " if row["enabled"] else "off"
        lines.append(
            f"  {mark} {row['severity']:<8} {row['threat_id']:<28}"
            f" mdm={row['mdm_action_name'] or '-'}"
            f" mitigation={row['mitigation']} device={row['device_action']}"
            f"{' notify' if row['notify_admin'] else ''}"
        )
    _emit(data, as_json, "\n".join(lines))


@matrix.command(name="set-row")
@click.argument("group")
@click.argument("threat_id")
@click.option("--tenant", "tenant_name")
@click.option("--enabled/--disabled", default=None)
@click.option("--severity")
@click.option("--alert-user/--no-alert-user", default=None)
@click.option("--device-action")
@click.option("--mdm-action", help="Action target id, on_device, or none.")
@click.option("--mitigation", type=click.Choice(["remove", "none"]))
@click.option("--notify/--no-notify", "notify_admin", default=None)
@click.option("--json", "as_json", is_flag=True)
def matrix_set_row(group, threat_id, tenant_name, as_json, **values):
    """Change one row of GROUP's draft; `bastion matrix deploy` publishes it."""
    _setup()
    from django.db import transaction

    from bastion.mdm.services import InvalidInput
    from bastion.threats.matrix import matrix_for, set_row

    tenant, found = _group(tenant_name, group)
    changes = {key: value for key, value in values.items() if value is not None}
    if isinstance(changes.get("mdm_action"), str) and changes["mdm_action"].isdigit():
        changes["mdm_action"] = int(changes["mdm_action"])
    try:
        with transaction.atomic():
            row = set_row(matrix_for(found), threat_id, changes)
            _audit(
                tenant,
                "matrix.set_row",
                "console_group",
                found.pk,
                {"threat_id": threat_id, "changes": changes},
            )
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None
    _emit(
        {"threat_id": threat_id, **row},
        as_json,
        f"Draft row {threat_id}: {json.dumps(row)} (not deployed yet)",
    )


@matrix.command(name="deploy")
@click.argument("group")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def matrix_deploy(group, tenant_name, as_json):
    """Deploy GROUP's draft as a new version."""
    _setup()
    from django.db import transaction

    from bastion.threats.matrix import deploy, matrix_for

    tenant, found = _group(tenant_name, group)
    with transaction.atomic():
        version = deploy(matrix_for(found), "cli")
        _audit(tenant, "matrix.deploy", "console_group", found.pk, {"version": version.number})
    data = {"group": found.pk, "version": version.number, "deployed_at": version.deployed_at}
    _emit(data, as_json, f"Deployed version {version.number} of {found.name}")
