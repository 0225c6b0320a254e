"""`python -m emulators.agent run --url URL --credentials FILE --script FILE`

FILE of credentials: a JSON list of device credentials (one agent each).
FILE of script: a JSON list of steps, e.g.
  [{"agent": 0, "action": "report", "threat_id": "arp_mitm", "event_id": "e1"},
   {"agent": 0, "action": "mitigate", "event_id": "e1", "wait": 2}]
"""

import argparse
import json
import sys
from pathlib import Path

from emulators.agent.fleet import Step, make_agents, run_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.agent")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="play a script of threats and mitigations")
    run.add_argument("--url", required=True, help="Bastion's address")
    run.add_argument("--credentials", required=True, type=Path)
    run.add_argument("--script", required=True, type=Path)
    run.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args(argv)

    credentials = json.loads(args.credentials.read_text())
    steps = [Step.from_dict(item) for item in json.loads(args.script.read_text())]
    agents = make_agents(args.url, credentials)
    results = run_script(agents, steps, parallel=args.parallel)

    failed = [r for r in results if not r.ok]
    summary = {
        "steps": len(results),
        "ok": len(results) - len(failed),
        "failed": [
            {"agent": r.step.agent, "action": r.step.action, "error": r.error} for r in failed
        ],
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
