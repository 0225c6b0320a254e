"""The `bastion` command as a script would use it."""

import json

import pytest
from click.testing import CliRunner

from bastion.cli import main
from bastion.inventory.models import Device
from bastion.mdm.models import Integration


@pytest.fixture
def run(db):
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def test_a_tenant_an_administrator_and_an_mdm_are_set_up_from_the_command_line(run, emulator):
    url = emulator.base_url("core")

    created = run("tenant", "create", "Acme Mobile", "--json")
    admin = run("admin", "create", "alice", "--password-env", "PW",
                env={"PW": "correct horse battery"})  # fmt: skip
    added = run(
        "mdm", "add", "Core EU", "--kind", "core", "--url", url, "--username", "admin",
        "--password-env", "MI", "--group", "Executives", "--group", "Sales", "--json",
        env={"MI": "secret"},
    )  # fmt: skip

    assert created.exit_code == 0 and json.loads(created.output)["name"] == "Acme Mobile"
    assert admin.exit_code == 0, admin.output
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["groups"] == ["Executives", "Sales"]
    listed = json.loads(run("mdm", "list", "--json").output)
    assert [row["name"] for row in listed] == ["Core EU"]


def test_sync_prints_the_runs_counts_as_json(run, core_integration):
    result = run("sync", "Core EU", "--json")

    counts = json.loads(result.output)["counts"]
    assert result.exit_code == 0
    assert counts["added"] == Device.objects.count() > 0
    history = json.loads(run("history", "Core EU", "--json").output)
    assert history[0]["status"] == "done"


def test_a_connection_test_names_what_is_wrong(run, tenant, emulator):
    result = run(
        "mdm", "add", "Core EU", "--kind", "core", "--url", emulator.base_url("core"),
        "--username", "admin", "--password-env", "MI", "--group", "Sales", env={"MI": "wrong"},
    )  # fmt: skip

    assert result.exit_code != 0
    assert "unauthorized" in result.output or "credentials" in result.output.lower()
    assert not Integration.objects.exists()


def test_an_unknown_group_is_refused_naming_it(run, tenant, emulator):
    result = run(
        "mdm", "add", "Core EU", "--kind", "core", "--url", emulator.base_url("core"),
        "--username", "admin", "--password-env", "MI", "--group", "Nope", env={"MI": "secret"},
    )  # fmt: skip

    assert result.exit_code != 0
    assert "Nope" in result.output
    assert not Integration.objects.exists()


def test_removing_an_mdm_keeps_its_devices_as_tombstones(run, synced_core):
    result = run("mdm", "remove", "Core EU", "--yes", "--leave-actions")

    assert result.exit_code == 0, result.output
    assert not Integration.objects.exists()
    assert set(Device.objects.values_list("state", flat=True)) == {Device.REMOVED}


def test_run_refuses_an_address_already_in_use_before_starting_anything(db):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = CliRunner().invoke(main, ["run", "--bind", f"127.0.0.1:{port}"])

    assert answer.exit_code == 1
    assert f"can't serve on 127.0.0.1:{port}" in answer.output
    assert "choose another with --bind" in answer.output
    assert "is running" not in answer.output


def test_an_existing_account_keeps_its_password_until_it_is_set_anew(run, tenant):
    from django.contrib.auth import get_user_model

    run("admin", "create", "alice", "--password-env", "PW", env={"PW": "correct horse battery"})
    again = run("admin", "create", "alice", "--password-env", "PW", env={"PW": "another long one!"})
    alice = get_user_model().objects.get(username="alice")
    assert "already existed" in again.output and "password unchanged" in again.output
    assert alice.check_password("correct horse battery")

    short = CliRunner().invoke(main, ["admin", "password", "alice", "--password-env", "PW"],
                               env={"PW": "short"})  # fmt: skip
    changed = run("admin", "password", "alice", "--password-env", "PW",
                  env={"PW": "a brand new passphrase"})  # fmt: skip
    unknown = CliRunner().invoke(main, ["admin", "password", "bob", "--password-env", "PW"],
                                 env={"PW": "a brand new passphrase"})  # fmt: skip

    asked = CliRunner().invoke(main, ["admin", "password", "alice"])
    assert asked.exit_code == 1 and "pass --password-env VAR" in asked.output
    assert short.exit_code == 1 and "password: use at least 10 characters" in short.output
    assert changed.exit_code == 0, changed.output
    alice.refresh_from_db()
    assert alice.check_password("a brand new passphrase")
    assert unknown.exit_code == 1 and "no console account 'bob'" in unknown.output
