"""The agent simulator against a live Bastion: it speaks only the device API over HTTP."""

import json
import subprocess
import sys

import pytest
from django.db import connection

from bastion.threats.models import ThreatEvent
from emulators.agent import Agent, Step, credential_from_activation, run_script
from emulators.agent.fleet import make_agents
from tests.threats.conftest import activate, core_labels, deliver_all, pick_device, respond, target


@pytest.fixture
def agents(transactional_db, live_server, synced_core):
    devices = []
    for _ in range(3):
        device = pick_device(synced_core, "ios", exclude=[d.pk for d in devices])
        device.token = activate(device)
        devices.append(device)
    return devices, make_agents(live_server.url, [d.token for d in devices])


def test_scripted_agents_report_and_mitigate(emulator, synced_core, agents):
    devices, simulated = agents
    for group in {d.group for d in devices}:
        respond(
            group,
            "arp_mitm",
            mdm_action=target(synced_core, "MTD-Quarantine").pk,
            mitigation="remove",
        )
    steps = [
        Step(agent=i, action="report", threat_id="arp_mitm", event_id=f"e{i}") for i in range(3)
    ]
    steps.append(Step(agent=0, action="mitigate", event_id="e0"))

    # The test database may be in-memory SQLite, which can't take concurrent writers.
    parallel = 1 if connection.vendor == "sqlite" else 3
    results = run_script(simulated, steps, parallel=parallel)
    deliver_all()

    assert all(r.ok for r in results), [r.error for r in results]
    assert ThreatEvent.objects.filter(state="active").count() == 2
    assert "MTD-Quarantine" not in core_labels(emulator, devices[0])
    assert "MTD-Quarantine" in core_labels(emulator, devices[1])


def test_an_agent_refetches_the_matrix_for_free_while_unchanged(agents):
    _, simulated = agents

    first = simulated[0].fetch_matrix()
    again = simulated[0].fetch_matrix()

    assert again == first and simulated[0].matrix_unchanged == 1


def test_a_refused_report_is_a_failed_step(agents):
    _, simulated = agents

    (result,) = run_script(simulated, [Step(agent=0, action="report", threat_id="nope")])

    assert not result.ok and "422" in result.error


def test_the_command_plays_a_script(tmp_path, live_server, agents):
    devices, _ = agents
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps([devices[0].token]))
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"agent": 0, "action": "report", "threat_id": "ip_scan"}]))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulators.agent",
            "run",
            "--url",
            live_server.url,
            "--credentials",
            str(credentials),
            "--script",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == 1
    assert ThreatEvent.objects.filter(threat_id="ip_scan").count() == 1


def test_an_activation_answer_gives_the_agent_its_credential():
    agent = Agent.from_activation("http://bastion", {"credential": {"token": "abc.def"}})

    assert agent.credential == "abc.def"
    with pytest.raises(ValueError):
        credential_from_activation({"credential": ""})
