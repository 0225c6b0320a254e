"""The database going away during event intake and during a sync: a clear 503 or a failed
run, nothing half-written, and recovery on the next attempt.

The loss is injected with Django's own execute_wrapper hook, which raises the error a
dropped PostgreSQL connection raises, at the statement where it hurts most.
"""

from contextlib import contextmanager

import httpx
import pytest
from django.db import OperationalError, connection

from bastion.inventory.models import Device
from bastion.mdm.models import SyncRun
from bastion.threats.models import ResponseAction, ThreatEvent
from tests.conftest import sync
from tests.faults.conftest import inventory
from tests.threats.conftest import report, respond, target


@contextmanager
def database_lost_at(statement: str, times: int = 1):
    """The first `times` statements starting with `statement` fail as a lost server would."""
    left = [times]

    def fail(execute, sql, params, many, context):
        if left[0] and sql.lstrip().upper().startswith(statement.upper()):
            left[0] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail):
        yield left


def test_intake_answers_503_and_stores_no_half_event(client, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, "MTD-Quarantine").pk)

    with database_lost_at('INSERT INTO "threats_responseaction"') as left:
        answer = report(client, iris, "arp_mitm", "ev-1")

    assert left == [0], "the fault never fired"
    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    assert "database" in answer.json()["detail"]
    assert not ThreatEvent.objects.filter(device=iris, agent_event_id="ev-1").exists()
    assert not ResponseAction.objects.filter(device=iris).exists()


def test_intake_recovers_and_a_retried_report_is_stored_once(client, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, "MTD-Quarantine").pk)
    with database_lost_at('INSERT INTO "threats_threatevent"'):
        report(client, iris, "arp_mitm", "ev-1")

    first = report(client, iris, "arp_mitm", "ev-1")
    again = report(client, iris, "arp_mitm", "ev-1")

    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert ThreatEvent.objects.filter(device=iris, agent_event_id="ev-1").count() == 1
    assert ResponseAction.objects.filter(device=iris).count() == 1


def _change_one_device(emulator, product: str, integration) -> str:
    device = Device.objects.filter(integration=integration).order_by("pk").first()
    if product == "core":
        body, path = {"osVersion": "19.0.1"}, f"/fleet/core/devices/{device.mdm_id}"
    else:
        body, path = {"platformVersion": "19.0.1"}, f"/fleet/cloud/devices/{device.mdm_id}"
    httpx.post(f"{emulator.url}/_emulator{path}", json=body, timeout=10).raise_for_status()
    return device.mdm_id


def test_a_sync_that_loses_the_database_writes_nothing_half(emulator, synced):
    product, integration = synced
    before = inventory(integration)
    changed = _change_one_device(emulator, product, integration)

    with database_lost_at('UPDATE "inventory_device"'), pytest.raises(OperationalError):
        sync(integration)

    run = integration.runs.order_by("-pk").first()
    assert run.status == SyncRun.FAILED
    assert inventory(integration) == before
    device = Device.objects.get(integration=integration, mdm_id=changed)
    assert device.os_version != "19.0.1"


def test_the_next_sync_after_a_lost_database_completes(emulator, synced):
    product, integration = synced
    before = inventory(integration)
    changed = _change_one_device(emulator, product, integration)
    with database_lost_at('UPDATE "inventory_device"'), pytest.raises(OperationalError):
        sync(integration)

    run = sync(integration)

    assert run.status == SyncRun.DONE
    assert inventory(integration) == before
    assert Device.objects.get(integration=integration, mdm_id=changed).os_version == "19.0.1"
