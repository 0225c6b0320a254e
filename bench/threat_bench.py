"""Threat intake benchmark on a distributed Bastion: gunicorn on PostgreSQL, two Celery
workers on Redis, the MobileIron Core emulator in its own process.

    .venv/bin/python bench/threat_bench.py                       # threat mode, 1,000 devices
    .venv/bin/python bench/threat_bench.py --mode intake         # 5,000 devices, 500/s, 180 s
    .venv/bin/python bench/threat_bench.py --devices 200 --idle-reports 20   # a quick look

threat: every device reports one threat as fast as the generator can send (events accepted
per second, batches not used), then a trickle of reports while the workers are idle gives
report-to-applied latency (p50, p95, p99). intake: an open-loop generator sends `--rate`
events per second spread over every device for `--duration` seconds, in requests of
`--batch` events (1: single reports); a share of the events (`--action-share`) asks for an
MDM label, the rest for no MDM action; prints the rate held,
device-API latency percentiles, errors, lost events (answered 200 but not stored), and
report-to-applied for the MDM actions.

Report-to-applied is the time from the generator sending a report to Bastion recording the
MDM's successful answer (the action's done_at): an upper bound of the moment the emulator
applied the label, whose own count of label calls is checked against it. Baselines from the
same run: the emulator's own answer time, and the rate and latency of Bastion's /health.
The load generator's CPU share is its own CPU time over wall time times the cores.
"""

import argparse
import os
import random
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import CORE, Stack, provision, respond, sql  # noqa: E402

GROUPS = ["iOS", "Android"]
ACTION_THREAT = "arp_mitm"
QUIET_THREAT = "ip_scan"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["threat", "intake"], default="threat")
    parser.add_argument("--devices", type=int, help="Simulated devices (1,000 / 5,000).")
    parser.add_argument("--rate", type=float, default=500, help="intake: events per second")
    parser.add_argument("--duration", type=float, default=180, help="intake: seconds")
    parser.add_argument(
        "--action-share",
        type=float,
        default=0.1,
        help="intake: share of reports that ask for an MDM label",
    )
    parser.add_argument(
        "--batch",
        type=int,
        help="events per request, sent as one batch; 1 = single reports. threat: events "
        "per device, the first asks for a label (default 10); intake: default 1",
    )
    parser.add_argument("--idle-reports", type=int, default=100, help="threat: idle trickle")
    parser.add_argument("--threads", type=int, default=48, help="generator threads")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--web-threads", type=int, default=1)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    args = parser.parse_args()
    args.devices = args.devices or (1000 if args.mode == "threat" else 5000)
    args.batch = args.batch or (10 if args.mode == "threat" else 1)

    stack = Stack(
        name="bastion_threat_bench",
        devices=args.devices,
        redis_db=10,
        concurrency=args.worker_concurrency,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        # The benchmark's devices send more than an agent would; the limit is not measured.
        extra_env={"BASTION_DEVICE_RATE_LIMIT": "100000"},
        log=lambda text: print(text, file=sys.stderr, flush=True),
    )
    failed = True
    try:
        stack.start()
        credentials = prepare(stack, args.devices, args.threads)
        baselines = measure_baselines(stack, args.threads)
        if args.mode == "threat":
            figures = threat_mode(stack, credentials, args)
        else:
            figures = intake_mode(stack, credentials, args)
        print_report(args, len(credentials), baselines, figures)
        failed = False
    finally:
        stack.stop(keep_data=failed)


# Setting up: one Core, its devices synced, activated, every group answering arp_mitm.


def prepare(stack: Stack, devices: int, threads: int) -> list[str]:
    tenant = provision(stack, core_groups=GROUPS, tenant="Bench")
    run = stack.cli("sync", CORE, "--queue")
    assert run["status"] == "done", run
    for group in GROUPS:
        respond(stack, f"{CORE} / {group}", "MTD-Quarantine")

    mdm_ids = [row[0] for row in sql(stack, "SELECT mdm_id FROM inventory_device ORDER BY id")]
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=threads))

    def activate(mdm_id: str) -> str | None:
        answer = client.post(
            stack.web_url + "/api/device/v1/activate",
            json={"tenantid": tenant["tenant_id"], "uuid": mdm_id},
        )
        return answer.json()["credential"] if answer.status_code == 200 else None

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        credentials = [c for c in pool.map(activate, mdm_ids) if c]
    log(
        f"{len(credentials)} of {len(mdm_ids)} devices activated in "
        f"{time.monotonic() - started:.1f}s"
    )
    return credentials


# Baselines, measured in the same run.


def measure_baselines(stack: Stack, threads: int, count: int = 2000) -> dict:
    emulator = httpx.Client(timeout=10)
    emulator_ms = []
    for _ in range(200):
        started = time.perf_counter()
        emulator.get(stack.urls["control"] + "/health")
        emulator_ms.append((time.perf_counter() - started) * 1000)

    health = _closed_loop(lambda client, i: client.get(stack.web_url + "/health"), count, threads)
    return {"emulator_ms": percentiles(emulator_ms), "health": health}


def _closed_loop(call, count: int, threads: int) -> dict:
    """`count` calls from `threads` threads, each as soon as the previous answered."""
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=threads))
    latencies: list[float] = []
    errors = [0]
    counter = iter(range(count))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            status = call(client, index).status_code
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors[0] += 1

    cpu, wall = cpu_seconds(), time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wall = time.monotonic() - wall
    return {
        "rate": count / wall,
        "ms": percentiles(latencies),
        "errors": errors[0],
        "generator_cpu": (cpu_seconds() - cpu) / (wall * os.cpu_count()),
    }


# Threat mode.


def threat_mode(stack: Stack, credentials: list[str], args) -> dict:
    # The first devices are kept for the idle trickle: their first report needs a label.
    idle_devices = credentials[: args.idle_reports]
    burst_devices = credentials[args.idle_reports :]
    sent_at: dict[str, float] = {}

    def report(client, index):
        event_id = f"burst-{index}"
        sent_at[event_id] = time.time()
        if args.batch == 1:
            return _post_report(
                client, stack.web_url, burst_devices[index], event_id, ACTION_THREAT
            )
        events = [(event_id, ACTION_THREAT)] + [
            (f"quiet-{index}-{n}", QUIET_THREAT) for n in range(1, args.batch)
        ]
        return _post_batch(client, stack.web_url, burst_devices[index], events)

    burst = _closed_loop(report, len(burst_devices), args.threads)
    burst["events_rate"] = burst["rate"] * args.batch
    burst["drain_seconds"] = wait_for_actions(stack, "burst-%", len(burst_devices))
    burst["applied"] = applied_latency(stack, "burst-%", sent_at)

    # Idle workers: one report at a time, the next once the previous label is applied.
    idle_sent: dict[str, float] = {}
    client = httpx.Client(timeout=30)
    for index, credential in enumerate(idle_devices):
        event_id = f"idle-{index}"
        idle_sent[event_id] = time.time()
        _post_report(client, stack.web_url, credential, event_id, ACTION_THREAT)
        wait_for_actions(stack, event_id, 1, timeout=30, poll=0.01)
        time.sleep(0.05)
    idle = applied_latency(stack, "idle-%", idle_sent)
    return {"burst": burst, "idle": idle, "label_calls": emulator_label_calls(stack)}


def _post_batch(client, base: str, credential: str, events: list[tuple[str, str]]):
    headers = {"Authorization": f"Bearer {credential}"}
    detected = now_iso()
    body = {
        "events": [
            {"event_id": event_id, "threat_id": threat, "detected_at": detected}
            for event_id, threat in events
        ]
    }
    return client.post(f"{base}/api/device/v1/threats/batch", json=body, headers=headers)


def _post_report(client, base: str, credential: str, event_id: str, threat: str):
    headers = {"Authorization": f"Bearer {credential}"}
    body = {"event_id": event_id, "threat_id": threat, "detected_at": now_iso()}
    return client.post(f"{base}/api/device/v1/threats", json=body, headers=headers)


# Intake mode.


def intake_mode(stack: Stack, credentials: list[str], args) -> dict:
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    planned_latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    lock = threading.Lock()
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=args.threads))
    requests_per_second = args.rate / args.batch
    total = int(requests_per_second * args.duration)
    rng = random.Random(7)
    # One request per item: a device and its `batch` events, each asking for the label
    # with probability `action_share`.
    plan = [
        (credentials[i % len(credentials)],
         [(f"intake-{i}-{n}", ACTION_THREAT if rng.random() < args.action_share else QUIET_THREAT)
          for n in range(args.batch)])
        for i in range(total)
    ]  # fmt: skip

    def send(item, planned: float):
        credential, events = item
        now = time.time()
        for event_id, _ in events:
            sent_at[event_id] = now
        started = time.perf_counter()
        waited = (time.monotonic() - planned) * 1000
        try:
            if args.batch == 1:
                ((event_id, threat),) = events
                answer = _post_report(client, stack.web_url, credential, event_id, threat)
            else:
                answer = _post_batch(client, stack.web_url, credential, events)
            status = answer.status_code
        except httpx.HTTPError:
            status = 0
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
            # From the planned send time: what an agent waits when Bastion falls behind.
            planned_latencies.append(waited + elapsed)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                accepted.extend(event_id for event_id, _ in events)

    # Open loop: each report leaves at its planned time, whatever the answers before it.
    cpu, began = cpu_seconds(), time.monotonic()
    behind = 0
    with ThreadPoolExecutor(args.threads) as pool:
        for index, item in enumerate(plan):
            due = began + index / requests_per_second
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            elif pause < -0.5:
                behind += 1
            pool.submit(send, item, due)
        sending = time.monotonic() - began
    wall = time.monotonic() - began
    generator_cpu = (cpu_seconds() - cpu) / (wall * os.cpu_count())

    stored = sql(
        stack, "SELECT count(*) FROM threats_threatevent WHERE agent_event_id LIKE 'intake-%%'"
    )[0][0]
    actions = sql(
        stack,
        "SELECT count(*) FROM threats_responseaction a JOIN threats_threatevent e "
        "ON e.id = a.event_id WHERE e.agent_event_id LIKE 'intake-%%'",
    )[0][0]
    drained = wait_for_actions(stack, "intake-%", actions, timeout=600)
    return {
        "sent": total * args.batch,
        "requests": total,
        "rate": len(accepted) / wall,
        "ms": percentiles(latencies),
        "planned_ms": percentiles(planned_latencies),
        "planned_seconds": args.duration,
        "seconds": wall,
        "sending": sending,
        "statuses": statuses,
        "lost": len(accepted) - stored,
        "behind": behind,
        "generator_cpu": generator_cpu,
        "actions": actions,
        "drain_seconds": drained,
        "applied": applied_latency(stack, "intake-%", sent_at),
    }


# Reading the outcome.


def wait_for_actions(stack, pattern: str, expected: int, timeout=600, poll=0.5) -> float:
    """Seconds until `expected` actions of events like `pattern` are done (or gave up)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        done = sql(
            stack,
            "SELECT count(*) FROM threats_responseaction a JOIN threats_threatevent e "
            "ON e.id = a.event_id WHERE e.agent_event_id LIKE %s AND a.state = 'done' "
            "AND a.op = 'apply'",
            pattern,
        )[0][0]
        if done >= expected:
            break
        time.sleep(poll)
    return time.monotonic() - started


def applied_latency(stack, pattern: str, sent_at: dict[str, float]) -> dict:
    rows = sql(
        stack,
        "SELECT e.agent_event_id, extract(epoch FROM a.done_at) FROM threats_responseaction a "
        "JOIN threats_threatevent e ON e.id = a.event_id WHERE e.agent_event_id LIKE %s "
        "AND a.state = 'done' AND a.op = 'apply'",
        pattern,
    )
    values = [
        (float(done) - sent_at[event_id]) * 1000 for event_id, done in rows if event_id in sent_at
    ]
    return {"count": len(values), "ms": percentiles(values)}


def emulator_label_calls(stack) -> int:
    log = httpx.get(stack.urls["control"] + "/requests?product=core&limit=10000").json()
    return sum(1 for e in log["entries"] if e["method"] == "PUT" and "/add" in e["path"])


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(share):
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fmt(p: dict) -> str:
    if p["p50"] is None:
        return "n/a"
    return f"p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f} ms, p99 {p['p99']:.0f} ms"


def print_report(args, devices: int, baselines: dict, figures: dict) -> None:
    health = baselines["health"]
    print(
        f"\n== threat benchmark, mode {args.mode}, {devices} activated devices, "
        f"gunicorn {args.web_workers}x{args.web_threads}, 2 Celery workers "
        f"x{args.worker_concurrency}, {os.cpu_count()} cores"
    )
    print(f"baseline emulator answer: {fmt(baselines['emulator_ms'])}")
    print(f"baseline Bastion /health: {health['rate']:.0f} req/s, {fmt(health['ms'])}")
    if args.mode == "threat":
        burst, idle = figures["burst"], figures["idle"]
        print(
            f"events accepted: {burst['events_rate']:.0f}/s in {burst['rate']:.0f} "
            f"requests/s of {args.batch} event(s) ({burst['rate'] / health['rate']:.2f} of "
            f"/health's rate), errors {burst['errors']}, device API {fmt(burst['ms'])}"
        )
        print(f"generator CPU share: {burst['generator_cpu']:.0%} of the machine")
        applied = fmt(burst["applied"]["ms"])
        print(
            f"burst: {burst['applied']['count']} labels applied, the last "
            f"{burst['drain_seconds']:.1f}s after the burst; report-to-applied {applied}"
        )
        print(f"idle workers: report-to-applied {fmt(idle['ms'])} over {idle['count']} reports")
        print(f"emulator label calls: {figures['label_calls']}")
    else:
        print(
            f"sent {figures['sent']} events in {figures['requests']} requests of {args.batch} at "
            f"{args.rate:.0f} events/s planned; accepted {figures['rate']:.0f} events/s; "
            f"answers {figures['statuses']}; lost {figures['lost']}; "
            f"requests sent late {figures['behind']}"
        )
        print(
            f"all answered {figures['seconds']:.0f}s after the start "
            f"({figures['planned_seconds']:.0f}s planned)"
        )
        print(f"device API latency: {fmt(figures['ms'])}")
        print(f"latency from the planned send time: {fmt(figures['planned_ms'])}")
        print(f"generator CPU share: {figures['generator_cpu']:.0%} of the machine")
        applied = fmt(figures["applied"]["ms"])
        print(
            f"MDM actions: {figures['actions']}, drained {figures['drain_seconds']:.1f}s "
            f"after the last report; report-to-applied {applied}"
        )


if __name__ == "__main__":
    main()
