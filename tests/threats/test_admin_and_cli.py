"""The admin API and the command line over the same events and matrices."""

import json

from click.testing import CliRunner

from bastion.cli import main
from bastion.tenancy.models import AuditEntry
from bastion.tenancy.services import create_tenant
from bastion.threats.models import ResponseAction
from tests.threats.conftest import auth, deliver_all, report, respond, target

API = "/api/admin/v1"


def _failed_action(client, emulator, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, "MTD-Quarantine").pk)
    emulator.set_faults([{"kind": "error", "status": 403, "path": "/labels/", "times": 1}])
    report(client, iris, "arp_mitm", "ev-1")
    deliver_all()
    emulator.clear_faults()
    return ResponseAction.objects.get()


def test_events_are_listed_and_filtered(client, alice, synced_core, iris):
    report(client, iris, "arp_mitm", "ev-1")
    report(client, iris, "ip_scan", "ev-2")

    every = client.get(f"{API}/threat-events", headers=auth(alice.token)).json()
    low = client.get(f"{API}/threat-events?severity=low", headers=auth(alice.token)).json()
    by_threat = client.get(
        f"{API}/threat-events?threat=arp_mitm&device={iris.pk}", headers=auth(alice.token)
    ).json()

    assert every["total"] == 2
    assert [e["threat_id"] for e in low["events"]] == ["ip_scan"]
    assert [e["event_id"] for e in by_threat["events"]] == ["ev-1"]


def test_a_bad_filter_names_the_field(client, alice):
    answer = client.get(f"{API}/threat-events?outcome=weird", headers=auth(alice.token))

    assert answer.status_code == 422 and answer.json()["field"] == "outcome"


def test_a_failed_action_shows_on_its_event_and_can_be_retried(
    client, emulator, alice, synced_core, iris
):
    action = _failed_action(client, emulator, synced_core, iris)

    failed = client.get(f"{API}/threat-events?outcome=failed", headers=auth(alice.token)).json()
    shown = client.get(f"{API}/threat-events/{action.event_id}", headers=auth(alice.token)).json()
    retried = client.post(f"{API}/threat-actions/{action.pk}/retry", headers=auth(alice.token))
    deliver_all()

    assert failed["total"] == 1
    assert shown["actions"][0]["state"] == "failed" and shown["actions"][0]["last_error"]
    assert retried.status_code == 200
    assert ResponseAction.objects.get().state == ResponseAction.DONE
    assert AuditEntry.objects.filter(action="threat_action.retry", actor="alice").exists()


def test_read_only_administrators_cant_retry_or_edit(client, emulator, reader, synced_core, iris):
    action = _failed_action(client, emulator, synced_core, iris)

    retried = client.post(f"{API}/threat-actions/{action.pk}/retry", headers=auth(reader.token))
    edited = client.put(
        f"{API}/matrices/{iris.group_id}/rows/arp_mitm",
        {"severity": "low"},
        content_type="application/json",
        headers=auth(reader.token),
    )

    assert (retried.status_code, edited.status_code) == (403, 403)
    assert ResponseAction.objects.get().state == ResponseAction.FAILED


def test_another_tenants_event_is_not_found(client, alice, synced_core, iris):
    report(client, iris, "arp_mitm", "ev-1")
    event_id = iris.threat_events.get().pk
    stranger = create_tenant("Globex")
    alice.membership_set.create(tenant=stranger, role="admin")
    from bastion.api.models import AdminToken

    _, token = AdminToken.issue(alice, stranger)

    answer = client.get(f"{API}/threat-events/{event_id}", headers=auth(token))
    listed = client.get(f"{API}/threat-events", headers=auth(token)).json()

    assert answer.status_code == 404 and listed["total"] == 0


def test_matrix_rows_are_edited_then_deployed_through_the_api(client, alice, synced_core, iris):
    quarantine = target(synced_core, "MTD-Quarantine")
    url = f"{API}/matrices/{iris.group_id}"

    edited = client.put(
        f"{url}/rows/arp_mitm",
        {"mdm_action": quarantine.pk, "mitigation": "remove"},
        content_type="application/json",
        headers=auth(alice.token),
    )
    bad = client.put(
        f"{url}/rows/arp_mitm",
        {"severity": "huge"},
        content_type="application/json",
        headers=auth(alice.token),
    )
    before = client.get(url, headers=auth(alice.token)).json()
    deployed = client.post(f"{url}/deploy", headers=auth(alice.token)).json()
    after = client.get(url, headers=auth(alice.token)).json()

    assert edited.status_code == 200 and bad.json()["field"] == "severity"
    assert before["has_draft"] and before["version"] == 1
    assert deployed["version"] == 2 and not after["has_draft"]
    row = next(r for r in after["rows"] if r["threat_id"] == "arp_mitm")
    assert row["mdm_action_name"] == "MTD-Quarantine" and row["mitigation"] == "remove"
    assert {t["name"] for t in after["mdm_actions"]} >= {"MTD-Quarantine"}
    assert AuditEntry.objects.filter(action="matrix.deploy").count() == 1


def test_the_command_line_lists_shows_and_retries(client, emulator, synced_core, iris):
    action = _failed_action(client, emulator, synced_core, iris)
    runner = CliRunner()

    listed = runner.invoke(main, ["threats", "list", "--outcome", "failed", "--json"])
    shown = runner.invoke(main, ["threats", "show", str(action.event_id), "--json"])
    retried = runner.invoke(main, ["threats", "retry", str(action.pk)])
    again = runner.invoke(main, ["threats", "retry", str(action.pk)])

    assert [e["id"] for e in json.loads(listed.output)] == [action.event_id]
    assert json.loads(shown.output)["actions"][0]["state"] == "failed"
    assert retried.exit_code == 0
    assert again.exit_code != 0 and "not failed" in again.output


def test_the_command_line_edits_and_deploys_a_matrix(synced_core, iris):
    runner = CliRunner()
    group = str(iris.group_id)

    bad = runner.invoke(main, ["matrix", "set-row", group, "arp_mitm", "--severity", "huge"])
    edited = runner.invoke(
        main, ["matrix", "set-row", group, "arp_mitm", "--severity", "low", "--notify"]
    )
    deployed = runner.invoke(main, ["matrix", "deploy", group, "--json"])
    shown = runner.invoke(main, ["matrix", "show", group, "--json"])

    assert bad.exit_code != 0 and "severity" in bad.output
    assert edited.exit_code == 0, edited.output
    assert json.loads(deployed.output)["version"] == 2
    row = next(r for r in json.loads(shown.output)["rows"] if r["threat_id"] == "arp_mitm")
    assert row["severity"] == "low" and row["notify_admin"] is True
