"""Sync at scale on a distributed Bastion: several integrations synced at once by two
Celery workers on PostgreSQL and Redis.

    .venv/bin/python bench/sync_workers_bench.py                     # 5 × 20,000 = 100,000
    .venv/bin/python bench/sync_workers_bench.py --devices 2000      # a quick look

The emulator (its own process, no added latency) serves a Core fleet of `--devices` devices;
`--integrations` tenants each add a Core integration selecting the "iOS" and "Android" labels,
so every integration syncs the whole fleet into its own tenant. All first syncs are queued at
once (`bastion sync --queue`) and the two workers (`--concurrency` each) share them. Then the
same again: the re-sync, nothing changed.

Prints devices per second over the whole, each run's duration, the peak memory of every
worker process (VmHWM), and as a baseline in the same run the fetch-only time of one
integration's first sync (`sync_bench.py`'s fetch-all phase: every call, parsed, nothing
written) with the ratio of the synced rate to it.
"""

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20000, help="Devices per integration.")
    parser.add_argument("--integrations", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1, help="Per worker.")
    args = parser.parse_args()

    stack = Stack(
        name="bastion_sync_workers_bench",
        devices=args.devices,
        redis_db=13,
        concurrency=args.concurrency,
        web_workers=1,
        emulator_args=["--product", "core"],
        log=lambda text: print(text, file=sys.stderr, flush=True),
    )
    failed = True
    try:
        stack.start()
        names = provision(stack, args.integrations)
        baseline = fetch_baseline(stack)
        first = sync_all(stack, names)
        again = sync_all(stack, names)
        memory = worker_memory(stack)
        report(args, baseline, first, again, memory)
        failed = False
    finally:
        stack.stop(keep_data=failed)


def provision(stack: Stack, count: int) -> list[tuple[str, str]]:
    names = []
    for index in range(1, count + 1):
        tenant = f"Bench {index}"
        # sync_bench's fetch child looks the first one up by this name.
        name = "Bench Core" if index == 1 else f"Bench Core {index}"
        stack.cli("tenant", "create", tenant)
        stack.cli(
            "mdm", "add", name, "--tenant", tenant, "--kind", "core",
            "--url", stack.urls["core"], "--username", "admin", "--password-env", "MDM_PASSWORD",
            "--group", "iOS", "--group", "Android", env={"MDM_PASSWORD": "secret"},
        )  # fmt: skip
        names.append((tenant, name))
    return names


def fetch_baseline(stack: Stack) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sync_bench.py"), "--child", "fetch-all",
         "--url", stack.urls["core"]],
        cwd=ROOT, env=stack.env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def sync_all(stack: Stack, names: list[tuple[str, str]]) -> dict:
    def one(pair):
        tenant, name = pair
        return stack.cli("sync", name, "--tenant", tenant, "--queue")

    with ThreadPoolExecutor(len(names)) as pool:
        runs = list(pool.map(one, names))
    bad = [run for run in runs if run["status"] != "done"]
    if bad:
        raise SystemExit(f"syncs failed: {bad}")

    # From the first run a worker started to the last one finished: the command line's own
    # start-up and polling are not the sync's.
    began = min(datetime.fromisoformat(run["started_at"]) for run in runs)
    ended = max(datetime.fromisoformat(run["finished_at"]) for run in runs)
    return {
        "wall": (ended - began).total_seconds(),
        "devices": sum(run["counts"]["seen"] for run in runs),
        "runs": [run["duration_seconds"] for run in runs],
    }


def worker_memory(stack: Stack) -> dict[str, float]:
    """Peak resident memory (MB) of every process in each worker's process group."""
    peaks = {}
    for name, process in stack.processes.items():
        if not name.startswith("worker"):
            continue
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) != process.pid:
                    continue
                status = (proc / "status").read_text()
            except (OSError, IndexError, ValueError):
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[f"{name} pid {proc.name}"] = int(line.split()[1]) / 1024
    return peaks


def report(args, baseline: dict, first: dict, again: dict, memory: dict) -> None:
    fetch_rate = baseline["devices"] / baseline["seconds"]
    print(
        f"\n== {args.integrations} integrations × {args.devices:,} devices on PostgreSQL, "
        f"2 workers × {args.concurrency}"
    )
    print(
        f"baseline fetch-only (one integration, one process): {fetch_rate:.0f} devices/s, "
        f"{baseline['seconds']:.1f}s, peak {baseline['peak_mb']:.0f} MB"
    )
    for label, figures in (("first sync", first), ("re-sync", again)):
        rate = figures["devices"] / figures["wall"]
        runs = ", ".join(f"{seconds:.1f}" for seconds in figures["runs"])
        print(
            f"{label}: {figures['devices']:,} devices in {figures['wall']:.1f}s = "
            f"{rate:.0f} devices/s ({rate / fetch_rate:.2f} × fetch-only); runs {runs} s"
        )
    for name, peak in sorted(memory.items()):
        print(f"peak memory {name}: {peak:.0f} MB")


if __name__ == "__main__":
    main()
