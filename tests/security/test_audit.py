"""Audit coverage: every change an administrator makes through the admin API or the
command line, and every MDM call Bastion makes, leaves an entry with who, when, what and
from where; and nothing in the console or the APIs edits or deletes an entry.

A new admin API operation or command that this file does not know fails the suite: add it
to API_CHANGES / CLI_COMMANDS with how to run it.
"""

import json
import re
from datetime import timedelta
from pathlib import Path

import click
import pytest
from django.utils import timezone

from bastion.activation.models import ReactivationRequest
from bastion.api.admin import api as admin_api
from bastion.cli import main
from bastion.inventory.models import Device
from bastion.tenancy.models import AuditEntry
from tests.security.conftest import bearer, sign_in
from tests.security.helpers import cli
from tests.security.test_isolation import all_routes

BASTION = Path(__file__).resolve().parents[2] / "bastion"

# "METHOD path" → (URL from tenant A's objects, JSON body).
API_CHANGES = {
    "POST /threat-actions/{action_id}/retry": (lambda a: f"threat-actions/{a.action.pk}/retry", {}),
    "PUT /matrices/{group}/rows/{threat_id}": (
        lambda a: f"matrices/{a.group.pk}/rows/arp_mitm",
        {"enabled": False},
    ),
    "POST /matrices/{group}/deploy": (lambda a: f"matrices/{a.group.pk}/deploy", {}),
    "POST /integrations/{integration_id}/activation/code/rotate": (
        lambda a: f"integrations/{a.integration.pk}/activation/code/rotate",
        {},
    ),
    "POST /integrations/{integration_id}/activation/link/regenerate": (
        lambda a: f"integrations/{a.integration.pk}/activation/link/regenerate",
        {"days": 7},
    ),
    "POST /activation/requests/{request_id}/approve": (
        lambda a: f"activation/requests/{a.request.pk}/approve",
        {},
    ),
    "POST /activation/requests/{request_id}/reject": (
        lambda a: f"activation/requests/{_another_request(a).pk}/reject",
        {},
    ),
    "PUT /activation/settings": (
        lambda a: "activation/settings",
        {"require_reactivation_approval": False},
    ),
    "POST /profiles/{profile_id}/trust": (lambda a: f"profiles/{a.profile.pk}/trust", {}),
    "POST /profiles/{profile_id}/distrust": (lambda a: f"profiles/{a.profile.pk}/distrust", {}),
    "POST /malicious-apps": (
        lambda a: "malicious-apps",
        {"platform": "android", "identifier": "com.example.bad"},
    ),
    "DELETE /malicious-apps/{mark_id}": (lambda a: f"malicious-apps/{a.mark.pk}", {}),
}

# Reads that show a secret in full: audited like changes.
API_AUDITED_READS = {
    "GET /integrations/{integration_id}/activation/code": "code",
    "GET /integrations/{integration_id}/activation/link": "link",
    "GET /integrations/{integration_id}/activation/files/{name}": "files/android-xml",
}


def _another_request(side):
    return ReactivationRequest.objects.create(
        tenant=side.tenant,
        device=side.device,
        method="link",
        agent_kind=Device.AGENT_STANDALONE,
        pickup_hash="1" * 64,
    )


def api_operations() -> dict[str, str]:
    operations = {}
    for path, methods in admin_api.get_openapi_schema()["paths"].items():
        for method in methods:
            operations[f"{method.upper()} {path.removeprefix('/api/admin/v1')}"] = method
    return operations


def new_entries(since: int):
    return list(AuditEntry.objects.filter(pk__gt=since).order_by("pk"))


def last_id() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_every_admin_api_change_is_known_to_this_test():
    changes = {op for op, method in api_operations().items() if method != "get"}

    assert changes == set(API_CHANGES), (
        f"admin API changes without an audit test: {changes - set(API_CHANGES)}; "
        f"gone: {set(API_CHANGES) - changes}. Add them to API_CHANGES in {__file__}."
    )


@pytest.mark.parametrize("operation", sorted(API_CHANGES))
def test_every_admin_api_change_is_audited_with_who_when_what_and_where(client, acme, operation):
    method = operation.split()[0].lower()
    url, body = API_CHANGES[operation]
    path = "/api/admin/v1/" + url(acme)
    since = last_id()

    response = client.generic(
        method.upper(),
        path,
        data=json.dumps(body),
        content_type="application/json",
        headers=bearer(acme.admin_token),
        REMOTE_ADDR="192.0.2.44",
    )

    assert 200 <= response.status_code < 300, response.content[:300]
    entries = [e for e in new_entries(since) if e.actor == acme.admin.username]
    assert entries, f"{operation} left no audit entry by {acme.admin.username}"
    for entry in entries:
        assert entry.tenant_id == acme.tenant.pk
        assert entry.action
        assert entry.source_ip == "192.0.2.44"
        assert timezone.now() - entry.created_at < timedelta(minutes=1)


@pytest.mark.parametrize("operation", sorted(API_AUDITED_READS))
def test_full_views_of_secrets_are_audited(client, acme, operation):
    since = last_id()

    response = client.get(
        f"/api/admin/v1/integrations/{acme.integration.pk}/activation/{API_AUDITED_READS[operation]}",
        headers=bearer(acme.admin_token),
    )

    assert response.status_code == 200
    assert [e.actor for e in new_entries(since)] == [acme.admin.username]


# Command → how to run it for tenant A (a function of the side), or why it needs no entry.
CLI_COMMANDS = {
    "tenant create": lambda a: ["tenant", "create", "Audited Tenant"],
    "admin create": lambda a: [
        "admin",
        "create",
        "new-admin",
        "--tenant",
        a.tenant.name,
        "--password-env",
        "PW",
    ],  # fmt: skip
    "admin password": lambda a: ["admin", "password", a.admin.username, "--password-env", "PW"],
    "mdm remove": lambda a: [
        "mdm",
        "remove",
        a.integration.name,
        "--tenant",
        a.tenant.name,
        "--yes",
        "--leave-actions",
    ],  # fmt: skip
    "threats retry": lambda a: ["threats", "retry", str(a.action.pk), "--tenant", a.tenant.name],
    "matrix set-row": lambda a: [
        "matrix",
        "set-row",
        str(a.group.pk),
        "arp_mitm",
        "--disabled",
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "matrix deploy": lambda a: ["matrix", "deploy", str(a.group.pk), "--tenant", a.tenant.name],
    "profiles trust": lambda a: ["profiles", "trust", str(a.profile.pk), "--tenant", a.tenant.name],
    "profiles distrust": lambda a: [
        "profiles",
        "distrust",
        str(a.profile.pk),
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "apps mark": lambda a: [
        "apps",
        "mark",
        "android",
        "com.example.bad",
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "apps unmark": lambda a: [
        "apps",
        "unmark",
        "android",
        a.mark.identifier,
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "activation code": lambda a: [
        "activation",
        "code",
        a.integration.name,
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "activation link": lambda a: [
        "activation",
        "link",
        a.integration.name,
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "activation rotate-code": lambda a: [
        "activation",
        "rotate-code",
        a.integration.name,
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "activation regenerate-link": lambda a: [
        "activation",
        "regenerate-link",
        a.integration.name,
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "activation approve": lambda a: [
        "activation",
        "approve",
        str(a.request.pk),
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    "activation files": lambda a: [
        "activation",
        "files",
        a.integration.name,
        "--file",
        "android-xml",
        "--tenant",
        a.tenant.name,
    ],  # fmt: skip
    # Tested against the emulator below: it needs an MDM that answers.
    "mdm add": "test_adding_an_mdm_from_the_command_line_is_audited",
    # Reads: they change nothing and show no secret.
    "tenant list": "read",
    "mdm list": "read",
    "mdm test": "read",
    "mdm groups": "read",
    "history": "read",
    "threats list": "read",
    "threats show": "read",
    "matrix show": "read",
    "profiles list": "read",
    "apps malicious": "read",
    "activation pending": "read",
    # A sync is recorded as its own SyncRun row, with its trigger, counts and messages.
    "sync": "sync run",
    # The operator's own tools: processes, schema, key rotation across every tenant.
    "migrate": "operator",
    "web": "operator",
    "worker": "operator",
    "scheduler": "operator",
    "run": "operator",
    "rotate-secrets": "operator",
    "emulator": "operator",
    "demo": "operator",
}


def cli_commands() -> list[str]:
    def walk(command, prefix=()):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, (*prefix, name))
        else:
            yield " ".join(prefix)

    return sorted(walk(main))


def test_every_command_is_known_to_this_test():
    commands = set(cli_commands())

    assert commands == set(CLI_COMMANDS), (
        f"commands without an audit decision: {commands - set(CLI_COMMANDS)}; "
        f"gone: {set(CLI_COMMANDS) - commands}. Add them to CLI_COMMANDS in {__file__}."
    )


@pytest.mark.parametrize(
    "command", sorted(name for name, how in CLI_COMMANDS.items() if callable(how))
)
def test_every_change_from_the_command_line_is_audited(acme, command):
    since = last_id()

    result = cli(*CLI_COMMANDS[command](acme), env={"PW": "correct horse battery 9"})

    assert result.exit_code == 0, result.output
    entries = new_entries(since)
    assert entries, f"`bastion {command}` left no audit entry"
    for entry in entries:
        assert entry.actor.startswith("cli"), entry.actor
        assert entry.action


def test_adding_an_mdm_from_the_command_line_is_audited(tenant, emulator):
    since = last_id()

    result = cli(
        "mdm", "add", "Core Audited", "--tenant", tenant.name, "--kind", "core",
        "--url", emulator.base_url("core"), "--username", "admin", "--password-env", "MI",
        "--group", "Executives", env={"MI": "secret"},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    entries = new_entries(since)
    assert [e.action for e in entries] == ["integration.create"]
    assert entries[0].tenant_id == tenant.pk and entries[0].actor.startswith("cli")
    assert "secret" not in str(entries[0].detail)


def test_every_mdm_call_bastion_makes_is_audited(synced_core):
    from bastion.mdm.models import ActionTarget
    from bastion.threats import engine
    from bastion.threats.matrix import deploy, matrix_for, set_row
    from bastion.threats.services import Report, report_threats

    device = Device.objects.filter(integration=synced_core).select_related("group").first()
    label = ActionTarget.objects.filter(integration=synced_core, blocker="").first()
    matrix = matrix_for(device.group)
    set_row(matrix, "arp_mitm", {"mdm_action": label.pk})
    deploy(matrix, "alice")
    since = last_id()

    report_threats(device, [Report("audit-1", "arp_mitm", timezone.now(), {})])
    engine.run_due()

    entries = [e for e in new_entries(since) if e.action.startswith("mdm_action.")]
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("system", "mdm_action.apply", str(device.pk))
    ]
    assert entries[0].detail["outcome"] == "done"
    assert entries[0].detail["target"] == label.name
    assert entries[0].detail["integration"] == synced_core.pk


def test_no_route_changes_or_deletes_audit_entries(client, acme):
    sign_in(client, acme)
    before = list(AuditEntry.objects.values_list("pk", "action", "detail"))

    for route in all_routes():
        if "audit" not in route:
            continue
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            client.generic(method, "/" + route, data="{}", content_type="application/json")

    after = list(AuditEntry.objects.values_list("pk", "action", "detail"))
    assert after[: len(before)] == before


def test_no_code_updates_or_deletes_audit_entries():
    writes = re.compile(
        r"AuditEntry\.objects[^\n]*\.(update|delete|bulk_update|update_or_create)\(|"
        r"audit_entries[^\n]*\.(update|delete)\("
    )
    offenders = [
        f"{path.relative_to(BASTION.parent)}:{number}"
        for path in BASTION.rglob("*.py")
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if writes.search(line)
    ]

    assert offenders == []
