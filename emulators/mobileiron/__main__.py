"""Command line: `python -m emulators.mobileiron serve|generate ...` (see README.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from .faults import FaultRule, parse_faults
from .fleet import generate_fleet, load_fleet, save_fleet
from .server import start_emulator


def _fault_rules(args: argparse.Namespace) -> list[FaultRule]:
    rules: list[FaultRule] = []
    seed = args.fault_seed
    if args.faults_file:
        with open(args.faults_file, encoding="utf-8") as handle:
            rules += parse_faults(json.load(handle))
    for text in args.fault:
        rules += parse_faults(json.loads(text))
    if args.latency_ms:
        rules.append(FaultRule.from_dict({"kind": "latency", "ms": args.latency_ms}))
    if args.error_rate:
        rules.append(
            FaultRule.from_dict(
                {
                    "kind": "error",
                    "rate": args.error_rate,
                    "status": args.error_status,
                    "seed": seed,
                }
            )
        )
    if args.throttle_rate or args.throttle_after is not None:
        rule: dict = {"kind": "throttle", "retry_after": args.retry_after, "seed": seed}
        if args.throttle_rate:
            rule["rate"] = args.throttle_rate
        if args.throttle_after is not None:
            rule["after"] = args.throttle_after
        rules.append(FaultRule.from_dict(rule))
    if args.hang_rate:
        rules.append(
            FaultRule.from_dict(
                {"kind": "hang", "rate": args.hang_rate, "seconds": args.hang_seconds, "seed": seed}
            )
        )
    if args.expire_credentials_after is not None:
        rules.append(
            FaultRule.from_dict(
                {"kind": "expire_credentials", "after": args.expire_credentials_after}
            )
        )
    return rules


def _serve(args: argparse.Namespace) -> int:
    if args.fleet:
        fleet = load_fleet(args.fleet)
    elif args.generate is not None or not args.replay:
        fleet = generate_fleet(
            args.generate if args.generate is not None else 1000,
            seed=args.seed,
            core_devices=args.core_devices,
            cloud_devices=args.cloud_devices,
        )
    else:
        fleet = None
    if fleet is not None and fleet.cloud is not None and args.app_inventory_per_minute is not None:
        fleet.cloud.app_inventory_per_minute = args.app_inventory_per_minute

    handle = start_emulator(
        fleet,
        host=args.host,
        port=args.port,
        product=args.product,
        faults=_fault_rules(args),
        replay=args.replay,
        replay_fallback=args.replay_fallback,
    )
    print(json.dumps(handle.urls()), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    handle.stop()
    return 0


def _generate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    fleet = generate_fleet(
        args.devices,
        seed=args.seed,
        core_devices=args.core_devices,
        cloud_devices=args.cloud_devices,
    )
    save_fleet(fleet, args.out)
    print(
        json.dumps(
            {
                "out": args.out,
                "core_devices": len(fleet.core.devices) if fleet.core else 0,
                "cloud_devices": len(fleet.cloud.devices) if fleet.cloud else 0,
                "users": len(fleet.users),
                "seconds": round(time.perf_counter() - started, 2),
            }
        ),
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.mobileiron")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the emulator until interrupted")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--fleet", help="fleet file (JSON)")
    source.add_argument(
        "--generate", type=int, metavar="N", help="generate N devices per product (default 1000)"
    )
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--core-devices", type=int)
    serve.add_argument("--cloud-devices", type=int)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--product", choices=("core", "cloud", "both"), default="both")
    serve.add_argument("--replay", metavar="DIR", help="serve recorded responses from DIR")
    serve.add_argument(
        "--replay-fallback",
        action="store_true",
        help="unrecorded requests go to the stateful emulator",
    )
    serve.add_argument(
        "--app-inventory-per-minute",
        type=int,
        help="Cloud CPS application inventory calls per minute (0 = no limit)",
    )
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help="a fault rule as JSON (repeatable)",
    )
    serve.add_argument("--faults-file", help="JSON file with a list of fault rules")
    serve.add_argument("--fault-seed", type=int, default=0)
    serve.add_argument("--latency-ms", type=float, default=0)
    serve.add_argument("--error-rate", type=float, default=0)
    serve.add_argument("--error-status", type=int, default=500)
    serve.add_argument("--throttle-rate", type=float, default=0)
    serve.add_argument("--throttle-after", type=int)
    serve.add_argument("--retry-after", type=int, default=1)
    serve.add_argument("--hang-rate", type=float, default=0)
    serve.add_argument("--hang-seconds", type=float, default=30)
    serve.add_argument("--expire-credentials-after", type=int, metavar="N")
    serve.set_defaults(run=_serve)

    generate = commands.add_parser("generate", help="write a generated fleet file")
    generate.add_argument("--devices", type=int, default=1000, help="devices per product")
    generate.add_argument("--core-devices", type=int)
    generate.add_argument("--cloud-devices", type=int)
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--out", required=True)
    generate.set_defaults(run=_generate)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
