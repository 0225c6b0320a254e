"""The threat catalog: shipped as data (`catalog.json`), read once per process.

Threat ids are stable: matrices and events store them, so a newer catalog may add threats
and rename them for display, but never reuse or drop an id.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("catalog.json")

CATEGORIES = ("network", "device", "app", "malware", "profile")
SEVERITIES = ("critical", "elevated", "low", "normal")
PLATFORMS = ("ios", "android")
NO_DEVICE_ACTION = "none"


@dataclass(frozen=True)
class Threat:
    id: str
    name: str
    category: str
    platforms: tuple[str, ...]
    severity: str
    # False for threats such as system tampering: only re-flashing the device ends them,
    # so their MDM answer is never undone automatically.
    mitigable: bool

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "platforms": list(self.platforms),
            "default_severity": self.severity,
            "mitigable": self.mitigable,
        }


@dataclass(frozen=True)
class Catalog:
    version: int
    threats: dict[str, Threat]
    device_actions: dict[str, dict[str, str]]

    def get(self, threat_id: str) -> Threat | None:
        return self.threats.get(threat_id)

    def all_device_actions(self) -> set[str]:
        ids = {NO_DEVICE_ACTION}
        for actions in self.device_actions.values():
            ids.update(actions)
        return ids


def parse(data: dict) -> Catalog:
    """Validates catalog data; raises ValueError naming the bad entry."""
    threats = {}
    for entry in data["threats"]:
        threat = Threat(
            id=entry["id"],
            name=entry["name"],
            category=entry["category"],
            platforms=tuple(entry["platforms"]),
            severity=entry["severity"],
            mitigable=bool(entry["mitigable"]),
        )
        if threat.id in threats:
            raise ValueError(f"threat {threat.id!r} is listed twice")
        if threat.category not in CATEGORIES:
            raise ValueError(f"threat {threat.id!r}: unknown category {threat.category!r}")
        if threat.severity not in SEVERITIES:
            raise ValueError(f"threat {threat.id!r}: unknown severity {threat.severity!r}")
        if not threat.platforms or set(threat.platforms) - set(PLATFORMS):
            raise ValueError(f"threat {threat.id!r}: platforms must be among {PLATFORMS}")
        threats[threat.id] = threat

    actions = {
        platform: {action["id"]: action["name"] for action in entries}
        for platform, entries in data["device_actions"].items()
    }
    return Catalog(version=int(data["version"]), threats=threats, device_actions=actions)


@cache
def catalog() -> Catalog:
    return parse(json.loads(CATALOG_FILE.read_text()))
