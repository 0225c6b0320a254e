"""Longer outages on real processes: the broker down for a full minute, and the PostgreSQL
server restarted during a sync and during event intake.

The broker test runs the stack of test_processes.py (bench/stack.py: gunicorn, two workers,
a scheduler) with a Redis of its own. The database tests run the same stack on a PostgreSQL
cluster of their own, created with initdb in a temporary folder, so restarting it touches no
other database on this machine. All run in the PostgreSQL pass of the suite only.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from bench.stack import (
    CLOUD,
    CORE,
    Stack,
    active_members,
    free_port,
    has_label,
    provision,
    respond,
    sql,
)
from emulators.agent.client import API_PATH, Agent, activate, now_iso
from tests.conftest import CLOUD_GROUPS
from tests.faults.test_processes import PrivateRedis, figure

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql" or shutil.which("redis-server") is None,
    reason="needs PostgreSQL (the suite's PostgreSQL pass) and redis-server",
)

GROUP = f"{CORE} / Executives"
# How long the broker stays down: a full minute, two periods of the action sweep.
OUTAGE_SECONDS = 60
# Devices whose agents report a threat that asks for a label while the broker is down.
LABELLED = 10
# The emulated fleet of the database tests: large enough that a first sync of the Cloud's
# selected groups runs for several seconds.
RESTART_FLEET = 5000


def _postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: the newest /usr/lib/postgresql/N/bin, else the
    one of `initdb` on the PATH."""
    versions = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if path.parent.parent.name.isdigit()
    ]
    if versions:
        return max(versions, key=lambda folder: int(folder.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _postgres_missing() -> str:
    """Why a private PostgreSQL cluster can't be started here, or "" when it can."""
    folder = _postgres_bin()
    if folder is None or not (folder / "pg_ctl").exists():
        return "needs the PostgreSQL server binaries (initdb, pg_ctl)"
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "initdb refuses root, and there is no postgres user to run it as"
        if shutil.which("runuser") is None:
            return "initdb refuses root, and runuser is missing"
    return ""


POSTGRES_MISSING = _postgres_missing()
needs_private_postgres = pytest.mark.skipif(
    bool(POSTGRES_MISSING), reason=POSTGRES_MISSING or "the PostgreSQL binaries are here"
)


class PrivatePostgres:
    """A PostgreSQL cluster of this module's own (trust auth, fsync off), which it may
    restart at will without touching the machine's shared server."""

    def __init__(self):
        self.bin = _postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bastion-outage-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}"
        # initdb and the server refuse to run as root.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if os.getuid() == 0:
            shutil.chown(self.folder, user="postgres")

    def _tool(self, name: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bin / name), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()}")

    def _pg_ctl(self, *args: str) -> None:
        # -l on every call: without it the server would inherit pg_ctl's captured output.
        self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", *args)

    def start(self) -> None:
        self._tool(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
            "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.folder} -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off -c max_connections=100"
        )
        self._pg_ctl("-o", options, "start")

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _started_stack(name: str, redis: PrivateRedis, devices: int, **provisioned) -> Stack:
    running = Stack(
        name=name,
        devices=devices,
        redis_server=f"redis://127.0.0.1:{redis.port}",
        redis_db=0,
        log=lambda _: None,
    )
    try:
        running.start()
        tenant = provision(running, **provisioned)
        run = running.cli("sync", CORE, "--queue")
        assert run["status"] == "done", run
        respond(running, GROUP, "MTD-Quarantine")
        running.tenant_id = tenant["tenant_id"]
        running.devices_ids = active_members(running, CORE, "Executives", "core", limit=20)
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture
def broker_stack():
    redis = PrivateRedis()
    redis.start()
    running = None
    try:
        running = _started_stack(
            "bastion_fault_outages", redis, 150, core_groups=["Executives", "Sales"]
        )
        yield running, redis
    finally:
        if running is not None:
            running.stop()
        if redis.process.poll() is None:
            redis.stop()


@pytest.fixture(scope="module")
def cluster():
    postgres = PrivatePostgres()
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.stop()


@pytest.fixture(scope="module")
def restart_stack(cluster):
    """A stack whose processes use the private cluster; `sql()` on it queries that cluster.

    The Core integration is synced and answers arp_mitm with a label; the Cloud one is
    never synced here, so its first sync is the one a restart interrupts."""
    redis = PrivateRedis()
    redis.start()
    running = None
    try:
        with pytest.MonkeyPatch.context() as patch:
            # bench.stack creates, and at the end drops, the stack's database on PG_SERVER.
            patch.setattr("bench.stack.PG_SERVER", cluster.url)
            running = _started_stack(
                "bastion_fault_restart", redis, RESTART_FLEET,
                core_groups=["Executives"], cloud_groups=CLOUD_GROUPS,
            )  # fmt: skip
            yield running
            running.stop()
            running = None
    finally:
        if running is not None:
            running.stop()
        redis.stop()


def _agents(stack: Stack, first: int, count: int) -> list[tuple[Agent, str]]:
    agents = []
    for mdm_id in stack.devices_ids[first : first + count]:
        status, answer = activate(stack.web_url, {"tenantid": stack.tenant_id, "uuid": mdm_id})
        assert status == 200, answer
        agents.append((Agent.from_activation(stack.web_url, answer), mdm_id))
    assert len(agents) == count, "not enough active devices in the group"
    return agents


def _report(agent: Agent, threat_id: str, event_id: str) -> tuple[int, str | None]:
    """One threat report as an agent sends it; the answer's status and Retry-After.

    A request that gets no answer at all counts as status 0."""
    body = {"event_id": event_id, "threat_id": threat_id, "detected_at": now_iso()}
    try:
        response = agent.http.post(
            agent.base_url + API_PATH + "/threats",
            headers={"Authorization": f"Bearer {agent.credential}"},
            json=body,
        )
    except httpx.HTTPError:
        return 0, None
    return response.status_code, response.headers.get("Retry-After")


def _events(stack: Stack, pattern: str) -> dict[str, list]:
    """agent event id -> [(threat, action op, action state, attempts)] of the matching
    events, one tuple per (event, action) row; an event without actions has (threat, None…)."""
    rows = sql(
        stack,
        "SELECT e.agent_event_id, e.threat_id, a.op, a.state, a.attempts "
        "FROM threats_threatevent e LEFT JOIN threats_responseaction a ON a.event_id = e.id "
        "WHERE e.agent_event_id LIKE %s",
        pattern,
    )
    found: dict[str, list] = {}
    for event_id, *rest in rows:
        found.setdefault(event_id, []).append(tuple(rest))
    return found


def _label_calls(stack: Stack) -> list[dict]:
    """The emulated Core's answered calls that added the quarantine label."""
    entries = stack.emulator_get("/requests?product=core")["entries"]
    return [
        entry
        for entry in entries
        if entry["method"] == "PUT"
        and entry["path"].split("?")[0].endswith("/labels/MTD-Quarantine/add")
        and entry["status"] == 200
    ]


def test_the_broker_down_a_full_minute_loses_no_report_and_no_action(broker_stack):
    stack, broker = broker_stack
    agents = _agents(stack, 0, LABELLED)
    httpx.post(stack.urls["control"] + "/reset-log", timeout=10)
    answers: list[tuple[str, int, str | None]] = []
    took: list[float] = []
    stop = threading.Event()

    def send(agent: Agent, threat_id: str, event_id: str) -> tuple[int, str | None]:
        begun = time.monotonic()
        status, retry_after = _report(agent, threat_id, event_id)
        took.append(time.monotonic() - begun)
        answers.append((event_id, status, retry_after))
        return status, retry_after

    def agent_loop(index: int, agent: Agent) -> None:
        # One label report per device, spread over the outage; low-severity reports between.
        time.sleep(index * OUTAGE_SECONDS * 0.8 / LABELLED)
        status, retry_after = send(agent, "arp_mitm", f"outage-label-{index}")
        while status == 503 and not stop.is_set():
            time.sleep(float(retry_after or 1))
            status, retry_after = send(agent, "arp_mitm", f"outage-label-{index}")
        sent = 0
        while not stop.wait(2):
            sent += 1
            send(agent, "ip_scan", f"outage-scan-{index}-{sent}")

    broker.stop()
    down = time.monotonic()
    queued = subprocess.Popen(
        stack.cli_argv("sync", CORE, "--queue", "--json"),
        env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    threads = [
        threading.Thread(target=agent_loop, args=(index, agent))
        for index, (agent, _) in enumerate(agents)
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, down + OUTAGE_SECONDS - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    broker.start()
    back = time.time()

    statuses = [status for _, status, _ in answers]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert all(retry for _, status, retry in answers if status == 503), "503 without Retry-After"
    answered = {event_id for event_id, status, _ in answers if status == 200}
    assert {f"outage-label-{index}" for index in range(LABELLED)} <= answered
    stored = _events(stack, "outage-%")
    assert set(stored) == answered, (
        "an event answered 200 is missing, or one not answered 200 is stored"
    )
    assert all(len(rows) == 1 for rows in stored.values()), "an event stored twice"
    for index in range(LABELLED):
        assert stored[f"outage-label-{index}"] == [("arp_mitm", "apply", "pending", 0)]
    assert _label_calls(stack) == [], "a label was applied while the broker was down"

    # The queued sync's broker message was never sent: it waits for the scheduler's resend of
    # runs queued longer than five minutes, a wait written to the database here.
    assert sql(stack, "SELECT count(*) FROM mdm_syncrun WHERE status = 'queued'") == [(1,)]
    sql(
        stack,
        "UPDATE mdm_syncrun SET created_at = created_at - interval '5 minutes' "
        "WHERE status = 'queued'",
    )
    labelled = [mdm_id for _, mdm_id in agents]
    stack.wait_for(
        lambda: all(has_label(stack, mdm_id) for mdm_id in labelled),
        240,
        "every label after the broker came back",
        every=1,
    )
    calls = _label_calls(stack)
    last_applied = max(call["t"] for call in calls) / 1000 - back
    out, err = queued.communicate(timeout=240)
    ((finished,),) = sql(
        stack,
        "SELECT extract(epoch FROM max(finished_at)) FROM mdm_syncrun WHERE trigger = 'manual'",
    )
    synced_after = float(finished) - back

    took.sort()
    figure(f"broker down {OUTAGE_SECONDS}s: {len(answers)} reports answered "
           f"{ {status: statuses.count(status) for status in set(statuses)} } in "
           f"{took[len(took) // 2]:.2f}s (median), {took[-1]:.2f}s at most; "
           f"{len(calls)} label calls, the last {last_applied:.1f}s after Redis came back; "
           f"the queued sync finished {synced_after:.1f}s after it")  # fmt: skip
    assert len(calls) == LABELLED, "a label was applied more than once"
    stack.wait_for(
        lambda: (
            sql(
                stack,
                "SELECT count(*) FROM threats_responseaction a JOIN threats_threatevent e "
                "ON e.id = a.event_id WHERE e.agent_event_id LIKE 'outage-label-%%' "
                "AND a.state = 'done' AND a.attempts = 1",
            )
            == [(LABELLED,)]
        ),
        30,
        "every action recorded done after one attempt",
    )
    assert queued.returncode == 0, err[-2000:]
    assert '"status": "done"' in out, out
    runs = sql(stack, "SELECT status FROM mdm_syncrun WHERE trigger = 'manual' ORDER BY id")
    assert runs == [("done",), ("done",)], runs


def _device_counts(stack: Stack, integration: str) -> tuple[int, int, int]:
    """(rows, distinct MDM ids, rows without a group) of one integration's devices."""
    ((rows, distinct, ungrouped),) = sql(
        stack,
        "SELECT count(*), count(DISTINCT d.mdm_id), count(*) FILTER (WHERE d.group_id IS NULL) "
        "FROM inventory_device d JOIN mdm_integration i ON i.id = d.integration_id "
        "WHERE i.name = %s AND d.state <> 'removed'",
        integration,
    )
    return rows, distinct, ungrouped


def _cloud_runs(stack: Stack) -> list[tuple]:
    return sql(
        stack,
        "SELECT r.id, r.status, r.error, r.added, r.progress_done FROM mdm_syncrun r "
        "JOIN mdm_integration i ON i.id = r.integration_id WHERE i.name = %s ORDER BY r.id",
        CLOUD,
    )


@needs_private_postgres
def test_a_database_restart_mid_sync_fails_the_run_and_the_next_completes(restart_stack, cluster):
    stack = restart_stack
    assert _cloud_runs(stack) == [], "the Cloud integration must not have been synced yet"
    follower = subprocess.Popen(
        stack.cli_argv("sync", CLOUD, "--queue", "--json"),
        env=stack.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.monotonic()
    stack.wait_for(lambda: _device_counts(stack, CLOUD)[0] > 0, 120, "the first devices")
    follower.kill()
    follower.wait()
    assert _cloud_runs(stack)[0][1] == "running", "the sync ended before the restart"
    restart_at = time.monotonic()
    cluster.restart()
    restarted_in = time.monotonic() - restart_at

    stack.wait_for(
        lambda: _cloud_runs(stack)[0][1] not in ("queued", "running"),
        120,
        "the interrupted run to end",
    )
    ended_in = time.monotonic() - restart_at
    ((_, status, error, recorded_added, _),) = _cloud_runs(stack)
    rows, distinct, ungrouped = _device_counts(stack, CLOUD)
    assert status in ("failed", "partial"), status
    assert "database" in error, error
    assert rows == distinct, "a device was written twice"
    assert ungrouped == 0
    assert recorded_added <= rows
    integration = sql(
        stack, "SELECT status, last_error FROM mdm_integration WHERE name = %s", CLOUD
    )
    assert integration == [("failed", error)]

    run = stack.cli("sync", CLOUD, "--queue", check=False)
    full, full_distinct, _ = _device_counts(stack, CLOUD)
    figure(f"database restarted mid-sync {restart_at - started:.1f}s in ({rows} devices "
           f"written; restart took {restarted_in:.1f}s): the run ended {status} "
           f"{ended_in:.1f}s after the restart began, error {error!r}; the next run "
           f"{run['status']} in {run['duration_seconds'] or 0:.1f}s with {full} "
           "devices")  # fmt: skip
    assert run["status"] == "done", run
    assert full == full_distinct
    assert full == rows + run["counts"]["added"], "the next run did not add what was missing"
    again = stack.cli("sync", CLOUD, "--queue", check=False)
    assert again["status"] == "done", again
    changed = {key: again["counts"][key] for key in ("added", "updated", "moved", "removed")}
    assert changed == {"added": 0, "updated": 0, "moved": 0, "removed": 0}, again
    assert _device_counts(stack, CLOUD)[0] == full


@needs_private_postgres
def test_a_database_restart_during_intake_answers_503_not_500(restart_stack, cluster):
    stack = restart_stack
    agents = _agents(stack, 0, 8)
    answers: list[tuple[float, float, str, int, str | None]] = []
    stop = threading.Event()

    def report_loop(number: int, agent: Agent) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1
            event_id = f"restart-{number}-{sent}"
            begun = time.monotonic()
            status, retry_after = _report(agent, "arp_mitm", event_id)
            answers.append((begun, time.monotonic(), event_id, status, retry_after))
            time.sleep(0.1)

    threads = [
        threading.Thread(target=report_loop, args=(number, agent))
        for number, (agent, _) in enumerate(agents)
    ]
    for thread in threads:
        thread.start()
    time.sleep(2)
    restart_at = time.monotonic()
    cluster.restart()
    back_at = time.monotonic()
    stack.wait_for(
        lambda: any(begun > back_at and status == 200 for begun, _, _, status, _ in answers),
        60,
        "a 200 after the restart",
    )
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    statuses = [status for *_, status, _ in answers]
    unavailable = [ended for _, ended, _, status, _ in answers if status == 503]
    first_200 = min(
        ended for begun, ended, _, status, _ in answers if begun > back_at and status == 200
    )
    window = f"{max(unavailable) - min(unavailable):.1f}s" if unavailable else "no time"
    figure(f"database restarted during intake (8 agents; restart took "
           f"{back_at - restart_at:.1f}s): answers "
           f"{ {status: statuses.count(status) for status in set(statuses)} }; 503 for "
           f"{window}; first 200 {first_200 - back_at:.1f}s after the server was back, "
           f"{first_200 - restart_at:.1f}s after the restart began")  # fmt: skip
    assert any(begun < back_at and ended > restart_at for begun, ended, *_ in answers), (
        "no report was in flight during the restart"
    )
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert all(retry for *_, status, retry in answers if status == 503), "503 without Retry-After"

    # An agent sends a report answered 503 again; it must then be stored once, like the rest.
    retried = {event_id for _, _, event_id, status, _ in answers if status == 503}
    for event_id in sorted(retried):
        agent = agents[int(event_id.split("-")[1])][0]
        assert _report(agent, "arp_mitm", event_id)[0] == 200, event_id
    answered = {event_id for _, _, event_id, status, _ in answers if status == 200}
    stored = _events(stack, "restart-%")
    assert set(stored) == answered | retried, "an event answered 200 is missing"
    wrong = {
        event_id: rows
        for event_id, rows in stored.items()
        if len(rows) != 1 or rows[0][:2] != ("arp_mitm", "apply")
    }
    assert wrong == {}, "an event stored twice, or without its action"
