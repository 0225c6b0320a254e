"""Many agents following a script of threats and mitigations."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from emulators.agent.client import Agent, AgentError


@dataclass
class Step:
    """One scripted step for one agent: report a threat, mitigate one, or fetch the matrix.

    `event_id` ties a mitigation to its report; `wait` seconds pass before the step.
    """

    agent: int
    action: str  # "report", "mitigate" or "matrix"
    threat_id: str = ""
    event_id: str = ""
    details: dict = field(default_factory=dict)
    wait: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> Step:
        if data.get("action") not in ("report", "mitigate", "matrix"):
            raise ValueError(f"unknown step action {data.get('action')!r}")
        return cls(
            agent=int(data["agent"]),
            action=data["action"],
            threat_id=data.get("threat_id", ""),
            event_id=data.get("event_id", ""),
            details=data.get("details") or {},
            wait=float(data.get("wait", 0)),
        )


@dataclass
class Result:
    step: Step
    ok: bool
    answer: dict | None = None
    error: str = ""


def make_agents(base_url: str, credentials: list[str]) -> list[Agent]:
    # One connection pool for every simulated device keeps thousands of them cheap.
    shared = httpx.Client(timeout=10.0, limits=httpx.Limits(max_connections=64))
    return [
        Agent(base_url, token, name=f"agent-{i}", client=shared)
        for i, token in enumerate(credentials)
    ]


def run_script(agents: list[Agent], steps: list[Step], parallel: int = 8) -> list[Result]:
    """Runs each agent's steps in order; different agents run side by side."""
    by_agent: dict[int, list[Step]] = {}
    for step in steps:
        if not 0 <= step.agent < len(agents):
            raise ValueError(f"step names agent {step.agent}; there are {len(agents)}")
        by_agent.setdefault(step.agent, []).append(step)

    def play(index: int) -> list[Result]:
        agent, results = agents[index], []
        for step in by_agent[index]:
            if step.wait:
                time.sleep(step.wait)
            results.append(_play(agent, step))
        return results

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        batches = list(pool.map(play, sorted(by_agent)))
    return [result for batch in batches for result in batch]


def _play(agent: Agent, step: Step) -> Result:
    try:
        if step.action == "report":
            answer = agent.report(
                step.threat_id, event_id=step.event_id or None, details=step.details
            )
        elif step.action == "mitigate":
            answer = agent.mitigate(step.event_id, threat_id=step.threat_id or None)
        else:
            matrix = agent.fetch_matrix()
            answer = {"version": matrix.get("version")}
    except (AgentError, httpx.HTTPError) as error:
        return Result(step, False, error=str(error))
    return Result(step, True, answer)
