"""Sync benchmark: devices per second, peak memory, and the ratio to a fetch-only baseline.

    .venv/bin/python bench/sync_bench.py                      # 10,000 and 100,000 on SQLite
    .venv/bin/python bench/sync_bench.py --sizes 10000 --database postgres://postgres@127.0.0.1/x

For each size, the emulator runs in its own process with no added latency, serving a
MobileIron Core whose "iOS" and "Android" labels (selected for sync) split the fleet.
Each phase runs in a fresh child process, so its peak memory is its own; the phases that
change nothing run --repeat times and the median counts:

- fetch-all: every call a first sync makes (device pages, app inventory, iOS profiles),
  parsed, nothing written: the baseline for a first sync;
- first: a first sync into an empty database;
- fetch-pages: the device pages alone, parsed, nothing written: the baseline for a re-sync
  (an unchanged device needs no app or profile call);
- resync: the same sync again, nothing changed in the MDM.

Prints a table and the targets' ratios; pass/fail is for people, not for the test run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ["iOS", "Android"]
PHASES = ["fetch-all", "first", "fetch-pages", "resync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument(
        "--database",
        action="append",
        help="'sqlite' or a postgres:// URL of a scratch database (dropped and recreated); "
        "may be given twice",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each repeatable phase (the baselines and the re-sync); the median counts",
    )
    parser.add_argument("--child", choices=PHASES + ["setup"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.url)))
        return

    databases = args.database or ["sqlite"]
    sizes = [int(size) for size in args.sizes.split(",")]
    results = []
    for database in databases:
        for size in sizes:
            results.append(measure(database, size, args.repeat))
    report(results)


def measure(database: str, size: int, repeat: int) -> dict:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "emulators.mobileiron", "serve", "--product", "core",
         "--generate", str(size), "--seed", "11", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = json.loads(emulator.stdout.readline())["core"]
        with tempfile.TemporaryDirectory() as data:
            env = environment(database, data)
            run_child("setup", url, env)
            phases = {}
            for phase in PHASES:
                # A first sync can run only once; the others change nothing and are
                # repeated, so that a moment of noise on a shared machine doesn't decide.
                times = 1 if phase == "first" else repeat
                runs = [run_child(phase, url, env) for _ in range(times)]
                phases[phase] = median_run(runs)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    return {"database": label_of(database), "size": size, **phases}


def median_run(runs: list[dict]) -> dict:
    """The run of median duration, with the highest peak memory of all the runs."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    return {**ordered[len(ordered) // 2], "peak_mb": max(run["peak_mb"] for run in runs)}


def environment(database: str, data: str) -> dict:
    env = dict(os.environ, BASTION_DATA_DIR=data, BASTION_ALLOW_HTTP_MDM="true")
    env.pop("BASTION_DATABASE_URL", None)
    if database != "sqlite":
        recreate_postgres(database)
        env["BASTION_DATABASE_URL"] = database
    return env


def recreate_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def label_of(database: str) -> str:
    return "SQLite" if database == "sqlite" else "PostgreSQL"


def run_child(phase: str, url: str, env: dict) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", phase, "--url", url],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if output.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


# Inside a child process.


def child(phase: str, url: str) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from bastion.mdm.models import Integration

    if phase == "setup":
        call_command("migrate", verbosity=0)
        return setup(url)

    integration = Integration.objects.get(name="Bench Core")
    started = time.perf_counter()
    counts = PHASE_FUNCTIONS[phase](integration)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, **counts}


def setup(url: str) -> dict:
    from bastion.mdm.services import (
        IntegrationSettings,
        build_connector,
        create_integration,
        resolve_groups,
    )
    from bastion.tenancy.services import create_tenant

    tenant = create_tenant("Bench")
    connector = build_connector("core", url, "admin", "secret")
    groups = resolve_groups(connector.list_groups("1"), GROUPS)
    values = IntegrationSettings(
        kind="core", name="Bench Core", url=url, username="admin", password="secret",
        space_id="1", space_name="Global",
    )  # fmt: skip
    create_integration(tenant, values, groups)
    return {}


def fetch(integration, with_inventory: bool) -> dict:
    from bastion.mdm.connectors.base import DeviceRecord
    from bastion.mdm.services import connector_for

    connector = connector_for(integration)
    groups = [g.mdm_group_id for g in integration.selected_groups()]
    devices = 0
    for page in connector.iter_devices(integration.space_id, groups):
        records = [r for r in page.records if isinstance(r, DeviceRecord) and r.active]
        devices += len(records)
        if with_inventory:
            # The same batches the sync writer fetches apps and profiles in.
            for start in range(0, len(records), 500):
                batch = records[start : start + 500]
                connector.fetch_apps(integration.space_id, batch)
                ios = [r for r in batch if r.platform == "ios"]
                if ios:
                    connector.fetch_profiles(integration.space_id, ios)
    connector.close()
    return {"devices": devices}


def sync(integration) -> dict:
    from bastion.mdm.services import connector_for
    from bastion.mdm.sync import SyncEngine

    connector = connector_for(integration)
    run = SyncEngine(integration, connector).run()
    connector.close()
    if run.status != "done":
        raise SystemExit(f"sync {run.status}: {run.error}")
    return {"devices": run.seen, "added": run.added, "updated": run.updated}


PHASE_FUNCTIONS = {
    "fetch-all": lambda integration: fetch(integration, with_inventory=True),
    "fetch-pages": lambda integration: fetch(integration, with_inventory=False),
    "first": sync,
    "resync": sync,
}


# The report.


def report(results: list[dict]) -> None:
    print()
    header = (
        f"{'database':<11}{'devices':>9}{'phase':>13}{'seconds':>9}{'dev/s':>9}"
        f"{'µs/dev':>9}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        for phase in PHASES:
            figures = result[phase]
            per_second = figures["devices"] / figures["seconds"]
            micros = figures["seconds"] / figures["devices"] * 1e6
            print(
                f"{result['database']:<11}{result['size']:>9,}{phase:>13}"
                f"{figures['seconds']:>9.1f}{per_second:>9.0f}{micros:>9.0f}"
                f"{figures['peak_mb']:>9.0f}"
            )
    print()
    print("Targets: first ≤ 1.5 × fetch-all, resync ≤ 1.2 × fetch-pages, peak < 500 MB,")
    print("         time per device at the largest size ≤ 1.25 × that at the smallest.")
    for result in results:
        first = result["first"]["seconds"] / result["fetch-all"]["seconds"]
        again = result["resync"]["seconds"] / result["fetch-pages"]["seconds"]
        print(
            f"{result['database']:<11}{result['size']:>9,}  first/fetch-all {first:.2f}"
            f"  resync/fetch-pages {again:.2f}  first peak {result['first']['peak_mb']:.0f} MB"
        )
    by_database = {}
    for result in results:
        by_database.setdefault(result["database"], []).append(result)
    for database, rows in by_database.items():
        if len(rows) < 2:
            continue
        small, large = rows[0], rows[-1]
        per_device = [r["first"]["seconds"] / r["first"]["devices"] for r in (small, large)]
        print(
            f"{database}: time per device at {large['size']:,} / at {small['size']:,} = "
            f"{per_device[1] / per_device[0]:.2f}"
        )


if __name__ == "__main__":
    main()
