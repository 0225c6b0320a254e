"""A distributed Bastion on this machine: the MobileIron emulator in its own process, a
fresh PostgreSQL database, a Redis database index, `bastion migrate`, N workers, one
scheduler and gunicorn. Used by scripts/distributed-check and the threat benchmark.

Every process is started in its own session and stopped (then killed) by `stop()`, which
also drops the database and empties the Redis index it used.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BASTION = [sys.executable, "-m", "bastion.cli"]
PG_SERVER = os.environ.get("BASTION_CHECK_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("BASTION_CHECK_REDIS", "redis://127.0.0.1:6379")


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    def __init__(
        self,
        *,
        name: str = "bastion_check",
        devices: int = 200,
        seed: int = 11,
        workers: int = 2,
        concurrency: int = 2,
        web_workers: int = 2,
        web_threads: int = 1,
        redis_db: int = 9,
        redis_server: str | None = None,
        extra_env: dict | None = None,
        emulator_args: list[str] | None = None,
        log=print,
    ):
        self.name = name
        self.devices = devices
        self.seed = seed
        self.workers = workers
        self.concurrency = concurrency
        self.web_workers = web_workers
        self.web_threads = web_threads
        self.redis_url = f"{redis_server or REDIS_SERVER}/{redis_db}"
        self.database_url = f"{PG_SERVER}/{name}"
        self.extra_env = extra_env or {}
        self.emulator_args = emulator_args or []
        self.log = log
        self.data = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.processes: dict[str, subprocess.Popen] = {}
        # Distributed mode passes its secrets explicitly, the same to every process.
        from cryptography.fernet import Fernet

        self.secrets = {
            "BASTION_SECRET_KEY": secrets.token_urlsafe(50),
            "BASTION_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
        self.urls: dict[str, str] = {}
        self.web_url = ""

    # Setting up.

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "BASTION_DATA_DIR": str(self.data),
                "BASTION_DATABASE_URL": self.database_url,
                "BASTION_BROKER_URL": self.redis_url,
                "BASTION_ALLOW_HTTP_MDM": "1",
                "BASTION_METRICS_DIR": str(self.data / "metrics"),
                "PYTHONPATH": str(ROOT),
                **self.secrets,
            }
        )
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(self.extra_env)
        return env

    def start(self) -> "Stack":
        self._fresh_database()
        self._fresh_redis()
        self.start_emulator()
        self.cli("migrate", json_out=False)

        for index in range(self.workers):
            self.start_worker(f"worker{index + 1}")
        self.start_scheduler("scheduler")
        self.start_web()
        return self

    def start_emulator(self) -> None:
        argv = [sys.executable, "-m", "emulators.mobileiron", "serve", "--port", "0"]
        argv += ["--generate", str(self.devices), "--seed", str(self.seed), *self.emulator_args]
        process = self._spawn("emulator", argv, capture_stdout=True)
        line = process.stdout.readline()
        if not line:
            raise StackError(f"the emulator did not start; see {self.data / 'emulator.log'}")
        self.urls = json.loads(line)
        self.log(f"emulator: {self.urls}")

    def start_worker(self, name: str) -> None:
        argv = [*BASTION, "worker", "--concurrency", str(self.concurrency)]
        self._spawn(name, argv)

    def start_scheduler(self, name: str) -> None:
        # Each scheduler keeps its own schedule file, as two hosts would.
        env = {"BASTION_DATA_DIR": str(self.data / name)}
        (self.data / name).mkdir(exist_ok=True)
        self._spawn(name, [*BASTION, "scheduler"], env=env)

    def start_web(self) -> None:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        env = {}
        if self.web_threads > 1:
            env["GUNICORN_CMD_ARGS"] = f"--threads {self.web_threads}"
        argv = [*BASTION, "web", "--bind", f"127.0.0.1:{port}", "--workers", str(self.web_workers)]
        self._spawn("web", argv, env=env)
        self.wait_for(lambda: self._answers(self.web_url + "/health"), 60, "gunicorn to answer")
        self.log(f"web: {self.web_url}")

    def _fresh_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def _fresh_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    # Running things.

    def cli_argv(self, *args: str) -> list[str]:
        return [*BASTION, *args]

    def cli(self, *args: str, json_out: bool = True, env: dict | None = None, check=True):
        """Runs a `bastion` command against this stack; returns its JSON answer."""
        argv = [*BASTION, *args] + (["--json"] if json_out else [])
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise StackError(
                f"bastion {' '.join(args)} failed ({done.returncode}): "
                f"{done.stderr.strip()[-2000:]} {done.stdout.strip()[-2000:]}"
            )
        if not json_out:
            return done
        return json.loads(done.stdout) if done.stdout.strip() else None

    def emulator_get(self, path: str) -> dict:
        control = self.urls["control"]
        return httpx.get(control + path, timeout=10).json()

    def wait_for(self, predicate, timeout: float, what: str, every: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            self._check_alive()
            if time.monotonic() > deadline:
                raise StackError(f"gave up after {timeout:.0f}s waiting for {what}")
            time.sleep(every)

    def _answers(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and not name.startswith("stopped:"):
                raise StackError(f"{name} exited with {process.returncode}; see {self.data}")

    def _spawn(self, name: str, argv: list[str], env=None, capture_stdout=False):
        logfile = open(self.data / f"{name}.log", "ab")  # noqa: SIM115 - kept for the process
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env(), **(env or {})},
            stdout=subprocess.PIPE if capture_stdout else logfile,
            stderr=logfile,
            text=capture_stdout,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        """Kills one process and every child it forked (a Celery worker's pool)."""
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        self.processes[f"stopped:{name}"] = process

    # Tearing down.

    def stop(self, keep_data: bool = False) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        self.processes.clear()

        try:
            import psycopg

            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._fresh_redis()
        except Exception as error:  # noqa: BLE001 - cleanup reports, never hides the result
            self.log(f"cleanup: {type(error).__name__}: {error}")
        if not keep_data:
            subprocess.run(["rm", "-rf", str(self.data)], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(keep_data=exc[0] is not None)


# Helpers shared by the check, the fault tests and the benchmarks.


def provision(stack: Stack, core_groups=None, cloud_groups=None, tenant="Distributed Check"):
    """A tenant, an administrator, and a Core and/or Cloud integration, through the CLI.
    Returns the tenant as `bastion tenant create --json` answers it."""
    created = stack.cli("tenant", "create", tenant)
    secrets_env = {"CHECK_ADMIN_PASSWORD": "check-admin-password-1", "MDM_PASSWORD": "secret"}
    stack.cli(
        "admin", "create", "checkadmin", "--password-env", "CHECK_ADMIN_PASSWORD",
        json_out=False, env=secrets_env,
    )  # fmt: skip
    for kind, name, username, groups in (
        ("core", CORE, "admin", core_groups),
        ("cloud", CLOUD, "admin@acme.example", cloud_groups),
    ):
        if not groups:
            continue
        chosen = [arg for group in groups for arg in ("--group", group)]
        stack.cli(
            "mdm", "add", name, "--kind", kind, "--url", stack.urls[kind],
            "--username", username, "--password-env", "MDM_PASSWORD", *chosen, env=secrets_env,
        )  # fmt: skip
    return created


CORE = "Core Check"
CLOUD = "Cloud Check"


def respond(stack: Stack, console_group: str, target: str, threat: str = "arp_mitm") -> None:
    """Sets the group's row for `threat` to `target`, removed on mitigation, and deploys."""
    matrix = stack.cli("matrix", "show", console_group)
    ids = [a["id"] for a in matrix["mdm_actions"] if a["name"] == target]
    assert ids, f"{target!r} is not offered as an MDM action of {console_group}"
    stack.cli(
        "matrix", "set-row", console_group, threat,
        "--mdm-action", str(ids[0]), "--mitigation", "remove",
    )  # fmt: skip
    stack.cli("matrix", "deploy", console_group)


def active_members(stack: Stack, mdm: str, group: str, kind: str, limit: int = 5) -> list[str]:
    """MDM ids of up to `limit` active devices of the MDM group, as the emulator holds it."""
    listed = {g["name"]: g["id"] for g in stack.cli("mdm", "groups", mdm)}
    found = []
    if kind == "core":
        members = stack.emulator_get(f"/state/core/labels/{listed[group]}")["uuids"]
        for uuid in members:
            if core_state(stack, uuid)["status"] == "ACTIVE":
                found.append(uuid)
            if len(found) >= limit:
                break
    else:
        members = stack.emulator_get(f"/state/cloud/groups/{listed[group]}")["members"]
        for device_id in members:
            if cloud_state(stack, device_id)["registrationState"] == "ACTIVE":
                found.append(str(device_id))
            if len(found) >= limit:
                break
    return found


def respond_and_pick(stack: Stack, mdm: str, group: str, target: str, kind: str) -> str:
    """Answers arp_mitm in the group with `target`; returns one active device's MDM id."""
    respond(stack, f"{mdm} / {group}", target)
    active = active_members(stack, mdm, group, kind, limit=1)
    assert active, f"no active device in {group}"
    return active[0]


def sql(stack: Stack, query: str, *params):
    """Runs one statement on the stack's database; returns the rows, if any."""
    import psycopg

    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def core_state(stack: Stack, uuid: str) -> dict:
    return stack.emulator_get(f"/state/core/devices/{uuid}")


def cloud_state(stack: Stack, device_id) -> dict:
    return stack.emulator_get(f"/state/cloud/devices/{device_id}")


def has_label(stack: Stack, uuid: str) -> bool:
    return "MTD-Quarantine" in {label["name"] for label in core_state(stack, uuid)["labels"]}


def has_attribute(stack: Stack, device_id: str) -> bool:
    return cloud_state(stack, device_id)["attrs"].get("MTDThreat") == ["1"]
