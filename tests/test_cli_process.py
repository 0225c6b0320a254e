"""The `bastion` command in its own process, as a person or a script runs it.

In-process tests share the test run's Django setup; these catch a command that only works
when something else set Django up first.
"""

import os
import subprocess
import sys

import pytest


@pytest.fixture
def bastion(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    environment.update(
        BASTION_DATA_DIR=str(tmp_path), BASTION_ALLOW_HTTP_MDM="true", MI_PASSWORD="secret"
    )

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "bastion.cli", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_every_command_group_works_from_a_fresh_process(bastion, emulator):
    steps = [
        ("tenant", "create", "Acme Mobile"),
        ("mdm", "add", "Core EU", "--kind", "core", "--url", emulator.base_url("core"),
         "--username", "admin", "--password-env", "MI_PASSWORD", "--group", "Sales"),
        ("sync", "Core EU", "--json"),
        ("history", "Core EU"),
        ("mdm", "groups", "Core EU"),
        ("matrix", "show", "Core EU / Sales"),
        ("threats", "list", "--json"),
        ("activation", "link", "Core EU"),
        ("profiles", "list"),
    ]  # fmt: skip

    for step in steps:
        result = bastion(*step)
        assert result.returncode == 0, f"{' '.join(step)}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr


def test_a_mistake_gets_one_line_that_says_what_to_do(bastion, emulator):
    bastion("tenant", "create", "Acme Mobile")

    result = bastion(
        "mdm", "add", "Core EU", "--kind", "core", "--url", emulator.base_url("core"),
        "--username", "admin", "--password-env", "MI_PASSWORD", "--group", "Nope",
    )  # fmt: skip

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Nope" in result.stderr and "Sales" in result.stderr
