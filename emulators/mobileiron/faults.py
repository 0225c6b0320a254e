"""Fault switches: make the emulated MDM slow, flaky, throttled or wrong on purpose.

A fault is a rule. Every rule has a kind, an optional scope (product, method, path substring,
username) and a trigger: `after` lets the first N matching requests through, `times` caps how
often it fires, `rate` fires on a seeded share of requests (deterministic for a given seed and
request order).

Kinds and their parameters:

- latency            `ms` added before answering (plus up to `jitter_ms`, seeded)
- error              answer `status` (default 500) instead of serving the call
- throttle           answer 429 with `Retry-After: retry_after` (seconds, default 1)
- hang               hold the request `seconds` (default 30), then drop the connection
- repeat_page        a paged call (offset/start > 0) gets the previous page again
- empty_page         a paged call gets no items while totals / hasMore still say more
- malformed          the JSON body is cut in half
- expire_credentials answer 401 (optionally only for `username`); use `after` for "after N"
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "latency",
    "error",
    "throttle",
    "hang",
    "repeat_page",
    "empty_page",
    "malformed",
    "expire_credentials",
)
PAGE_KINDS = ("repeat_page", "empty_page")
_SCOPE = ("kind", "product", "path", "method", "username", "rate", "after", "times", "seed")
_PARAMS = {
    "latency": {"ms": 0, "jitter_ms": 0},
    "error": {"status": 500, "body": None},
    "throttle": {"retry_after": 1},
    "hang": {"seconds": 30.0},
    "repeat_page": {},
    "empty_page": {},
    "malformed": {},
    "expire_credentials": {},
}


@dataclass
class FaultRule:
    kind: str
    product: str | None = None
    path: str | None = None
    method: str | None = None
    username: str | None = None
    rate: float | None = None
    after: int = 0
    times: int | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    matched: int = 0
    fired: int = 0
    _rng: random.Random = field(default=None, repr=False)

    def __post_init__(self):
        self._rng = random.Random(self.seed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        params = dict(_PARAMS[kind])
        for key, value in data.items():
            if key in _SCOPE:
                continue
            if key not in params:
                raise ValueError(f"fault {kind!r} has no parameter {key!r}")
            params[key] = value
        product = data.get("product")
        if product not in (None, "core", "cloud"):
            raise ValueError("product must be 'core', 'cloud' or absent")
        rate = data.get("rate")
        if rate is not None and not 0 <= float(rate) <= 1:
            raise ValueError("rate must be between 0 and 1")
        return cls(
            kind=kind,
            product=product,
            path=data.get("path"),
            method=(data.get("method") or "").upper() or None,
            username=data.get("username"),
            rate=float(rate) if rate is not None else None,
            after=int(data.get("after") or 0),
            times=int(data["times"]) if data.get("times") is not None else None,
            seed=int(data.get("seed") or 0),
            params=params,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("product", "path", "method", "username", "rate", "times"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(after=self.after, seed=self.seed, **self.params)
        out.update(matched=self.matched, fired=self.fired)
        return out

    def applies(self, product: str, method: str, target: str, username: str | None) -> bool:
        return (
            (self.product is None or self.product == product)
            and (self.method is None or self.method == method)
            and (self.path is None or self.path in target)
            and (self.username is None or self.username == username)
        )

    def trigger(self) -> bool:
        """Count one matching request and say whether the fault fires on it."""
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.rate is not None and self._rng.random() >= self.rate:
            return False
        self.fired += 1
        return True


@dataclass
class Decision:
    """What the fault layer wants done with one request."""

    latency_ms: float = 0.0
    action: str | None = None  # error | throttle | hang | expire_credentials
    rule: FaultRule | None = None
    malformed: bool = False


class FaultSet:
    def __init__(self, rules: list[FaultRule] | None = None):
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = list(rules or [])

    def set(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self.rules = list(rules)

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self.rules]

    def before(self, product: str, method: str, target: str, username: str | None) -> Decision:
        decision = Decision()
        with self._lock:
            for rule in self.rules:
                if rule.kind in PAGE_KINDS:
                    continue
                if not rule.applies(product, method, target, username):
                    continue
                if rule.kind == "latency":
                    if rule.trigger():
                        jitter = float(rule.params.get("jitter_ms") or 0)
                        decision.latency_ms += float(rule.params.get("ms") or 0)
                        decision.latency_ms += rule._rng.random() * jitter if jitter else 0
                elif rule.kind == "malformed":
                    if decision.action is None and rule.trigger():
                        decision.malformed = True
                elif decision.action is None and rule.trigger():
                    decision.action = rule.kind
                    decision.rule = rule
        return decision

    def page_hook(self, product: str, method: str, target: str, username: str | None):
        """The paging fault callback for one request, or None when no paging rule applies."""
        with self._lock:
            rules = [
                r
                for r in self.rules
                if r.kind in PAGE_KINDS and r.applies(product, method, target, username)
            ]
        if not rules:
            return None

        def hook(offset: int, limit: int) -> tuple[int, bool]:
            empty = False
            with self._lock:
                for rule in rules:
                    if rule.kind == "repeat_page":
                        if offset > 0 and rule.trigger():
                            offset = max(0, offset - limit)
                    elif rule.trigger():
                        empty = True
            return offset, empty

        return hook


def parse_faults(data: Any) -> list[FaultRule]:
    """Rules from a JSON body: a rule, a list of rules, or {"faults": [...]}."""
    if isinstance(data, dict) and "faults" in data:
        data = data["faults"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError('expected a fault object, a list of faults or {"faults": [...]}')
    return [FaultRule.from_dict(item) for item in data]
