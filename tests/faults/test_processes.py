"""Faults on real processes: Celery workers killed with SIGKILL mid-sync and mid-delivery,
the broker stopped and started again, the database dropping every connection during
intake, and two schedulers started by mistake.

These run a whole distributed Bastion (bench/stack.py: gunicorn, two workers, a scheduler)
on PostgreSQL with a Redis of their own, so they run in the PostgreSQL pass of the suite
only. "Time passes" (a dead run's heartbeat or claim growing old) is written to the
database instead of waited for.
"""

import shutil
import subprocess
import threading
import time

import httpx
import pytest
from django.db import connection

from bench.stack import (
    CORE,
    Stack,
    active_members,
    free_port,
    has_label,
    provision,
    respond,
    sql,
)
from emulators.agent.client import Agent, AgentError, activate

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql" or shutil.which("redis-server") is None,
    reason="needs PostgreSQL (the suite's PostgreSQL pass) and redis-server",
)

GROUP = f"{CORE} / Executives"


class PrivateRedis:
    """A Redis of this test module's own, which it may stop and start at will."""

    def __init__(self):
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "the private Redis did not start"
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def broker():
    redis = PrivateRedis()
    redis.start()
    yield redis
    if redis.process.poll() is None:
        redis.stop()


@pytest.fixture(scope="module")
def stack(broker):
    running = Stack(
        name="bastion_fault_processes",
        devices=150,
        redis_server=f"redis://127.0.0.1:{broker.port}",
        redis_db=0,
        log=lambda _: None,
    )
    try:
        running.start()
        tenant = provision(running, core_groups=["Executives", "Sales"])
        run = running.cli("sync", CORE, "--queue")
        assert run["status"] == "done", run
        respond(running, GROUP, "MTD-Quarantine")
        running.tenant_id = tenant["tenant_id"]
        running.devices_ids = active_members(running, CORE, "Executives", "core", limit=20)
        yield running
    finally:
        running.stop()


@pytest.fixture
def faults(stack):
    yield lambda rules: httpx.post(stack.urls["control"] + "/faults", json=rules, timeout=10)
    httpx.delete(stack.urls["control"] + "/faults", timeout=10)


def _agent(stack, index: int) -> tuple[Agent, str]:
    mdm_id = stack.devices_ids[index]
    status, answer = activate(stack.web_url, {"tenantid": stack.tenant_id, "uuid": mdm_id})
    assert status == 200, answer
    return Agent.from_activation(stack.web_url, answer), mdm_id


def _restart_workers(stack) -> None:
    for name in [n for n in stack.processes if n.startswith("worker")]:
        stack.kill(name)
    for index in range(2):
        stack.start_worker(f"worker{index + 1}")


def _device_rows(stack) -> tuple[int, int]:
    ((rows, distinct),) = sql(
        stack, "SELECT count(*), count(DISTINCT mdm_id) FROM inventory_device"
    )
    return rows, distinct


def test_workers_killed_mid_sync_then_the_next_run_completes(stack, faults):
    rows_before = _device_rows(stack)
    faults([{"kind": "latency", "ms": 400, "product": "core"}])
    follower = subprocess.Popen(
        [*stack.cli_argv("sync", CORE, "--queue", "--json")],
        env=stack.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stack.wait_for(
        lambda: sql(stack, "SELECT 1 FROM mdm_syncrun WHERE status = 'running'"), 60, "a sync"
    )

    _restart_workers(stack)
    follower.kill()
    faults([])
    sql(
        stack,
        "UPDATE mdm_syncrun SET heartbeat_at = now() - interval '11 minutes' "
        "WHERE status = 'running'",
    )
    started = time.monotonic()
    run = stack.cli("sync", CORE, "--queue")

    figure(f"killed mid-sync: next run {run['status']} in {time.monotonic() - started:.1f}s, "
           f"devices {rows_before[0]} before, {_device_rows(stack)[0]} after")  # fmt: skip
    assert run["status"] == "done", run
    assert _device_rows(stack) == rows_before
    assert rows_before[0] == rows_before[1]
    abandoned = sql(stack, "SELECT count(*) FROM mdm_syncrun WHERE error LIKE 'abandoned%%'")
    assert abandoned == [(1,)]


def test_workers_killed_mid_delivery_then_the_action_is_applied_once(stack, faults):
    agent, mdm_id = _agent(stack, 0)
    faults([{"kind": "latency", "ms": 5000, "product": "core", "path": "/labels/"}])

    agent.report("arp_mitm", event_id="kill-delivery-1")
    stack.wait_for(
        lambda: sql(stack, "SELECT 1 FROM threats_responseaction WHERE state = 'claimed'"),
        30,
        "a worker to claim the action",
    )
    _restart_workers(stack)
    faults([])
    sql(
        stack,
        "UPDATE threats_responseaction SET claimed_at = now() - interval '1 hour' "
        "WHERE state = 'claimed'",
    )

    started = time.monotonic()
    stack.wait_for(lambda: has_label(stack, mdm_id), 90, "the sweep to deliver the label")
    figure(f"killed mid-delivery: label applied {time.monotonic() - started:.1f}s after the "
           "claim expired")  # fmt: skip
    rows = sql(
        stack,
        "SELECT a.state, a.attempts FROM threats_responseaction a "
        "JOIN threats_threatevent e ON e.id = a.event_id WHERE e.agent_event_id = %s",
        "kill-delivery-1",
    )
    stack.wait_for(
        lambda: sql(
            stack,
            "SELECT 1 FROM threats_responseaction a JOIN threats_threatevent e "
            "ON e.id = a.event_id WHERE e.agent_event_id = %s AND a.state = 'done'",
            "kill-delivery-1",
        ),
        30,
        "the action to be recorded done",
    )
    assert len(rows) == 1


def test_the_broker_down_then_back_loses_no_action(stack, broker):
    agent, mdm_id = _agent(stack, 1)
    broker.stop()

    started = time.monotonic()
    answer = agent.report("arp_mitm", event_id="broker-down-1")
    answered_in = time.monotonic() - started
    time.sleep(5)
    broker.start()

    assert answer["state"] == "active"
    pending = sql(
        stack,
        "SELECT a.state FROM threats_responseaction a JOIN threats_threatevent e "
        "ON e.id = a.event_id WHERE e.agent_event_id = %s",
        "broker-down-1",
    )
    assert pending == [("pending",)], "the action must wait in the database"
    back = time.monotonic()
    stack.wait_for(lambda: has_label(stack, mdm_id), 120, "the sweep after the broker returned")
    figure(f"broker down: report answered in {answered_in:.2f}s; label applied "
           f"{time.monotonic() - back:.1f}s after the broker came back")  # fmt: skip


def test_dropped_database_connections_during_intake_answer_503_not_500(stack):
    agents = [_agent(stack, index)[0] for index in range(2, 10)]
    statuses: list[int] = []
    stop = threading.Event()

    def report_loop(agent: Agent, number: int) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1
            try:
                agent.report("ip_scan", event_id=f"drop-{number}-{sent}")
                statuses.append(200)
            except AgentError as error:
                statuses.append(error.status)

    threads = [threading.Thread(target=report_loop, args=(a, n)) for n, a in enumerate(agents)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    killed = sql(
        stack,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        stack.name,
    )
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    figure(f"database connections dropped: {killed[0][0]} killed; answers "
           f"{ {status: statuses.count(status) for status in set(statuses)} }")  # fmt: skip
    assert killed[0][0] > 0
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(200) > 0
    half_written = sql(
        stack,
        "SELECT count(*) FROM threats_threatevent e WHERE e.agent_event_id LIKE 'drop-%%' "
        "AND e.threat_id <> 'ip_scan'",
    )
    assert half_written == [(0,)]
    stored = sql(
        stack, "SELECT count(*) FROM threats_threatevent WHERE agent_event_id LIKE 'drop-%%'"
    )
    assert stored[0][0] == statuses.count(200)


def test_two_schedulers_still_run_one_sync_per_integration(stack):
    stack.kill("scheduler", sig=15)
    sql(stack, "DELETE FROM mdm_syncrun WHERE trigger = 'scheduled'")
    sql(stack, "UPDATE mdm_integration SET next_sync_at = now() - interval '1 minute'")

    stack.start_scheduler("scheduler-a")
    stack.start_scheduler("scheduler-b")
    stack.wait_for(
        lambda: sql(stack, "SELECT 1 FROM mdm_syncrun WHERE trigger = 'scheduled'"),
        # A fresh scheduler's first tick comes one period (60 s) after it starts.
        100,
        "a scheduled sync",
    )
    time.sleep(10)

    runs = sql(
        stack,
        "SELECT integration_id, status FROM mdm_syncrun WHERE trigger = 'scheduled' "
        "AND status <> 'skipped'",
    )
    figure(f"two schedulers: {len(runs)} scheduled run(s) for one due integration")
    assert len(runs) == 1, runs


def figure(text: str) -> None:
    """A figure for docs/reliability.md; shown with `pytest -s`."""
    print(f"FIGURE {text}")
