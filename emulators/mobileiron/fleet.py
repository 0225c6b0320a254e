"""Fleet model (what the emulated MDMs hold), the fleet file format and a fleet generator.

Devices are slot objects holding only what varies per device; shared things (users, the app
and profile catalogues) are referenced, so a 100,000-device fleet stays well under 1 KB per
device in memory. The emulator takes ownership of a Fleet and mutates it as calls come in.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import catalog

FORMAT = "mobileiron-emulator-fleet/1"

CORE_ROLES = ("API", "VIEW_DEVICE", "VIEW_LABEL", "APPLY_LABEL", "VIEW_APPS", "CPS")
CLOUD_ROLES = ("DEVICE_READ", "DEVICE_MANAGEMENT", "DEVICE_ACTIONS", "CPS")

CORE_GLOBAL_SPACE = 1
CLOUD_DEFAULT_SPACE = 100001
CLOUD_MARKETING_SPACE = 100002

DAY_MS = 86_400_000


class User:
    __slots__ = ("index", "uid", "email", "first_name", "last_name", "department", "region")

    def __init__(self, index, uid, email, first_name, last_name, department="", region="AMER"):
        self.index = index
        self.uid = uid
        self.email = email
        self.first_name = first_name
        self.last_name = last_name
        self.department = department
        self.region = region

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def uuid(self) -> str:
        # Stable per user without storing a string per user.
        tail = (self.index * 2654435761 + 0x5EED) & 0xFFFFFFFFFFFF
        return f"{self.index:08x}-5a1e-4c0d-9e6b-{tail:012x}"

    @property
    def account_groups(self) -> tuple[str, ...]:
        return ("All Users", self.department) if self.department else ("All Users",)


class CoreDevice:
    __slots__ = (
        "id",
        "uuid",
        "status",
        "platform",
        "os_version",
        "model",
        "manufacturer",
        "serial",
        "udid",
        "imei",
        "wifi_mac",
        "last_seen",
        "registered",
        "user",
        "space",
        "owner",
        "compliant",
        "quarantined",
        "apps",
        "profiles",
    )

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    def copy(self) -> CoreDevice:
        return CoreDevice(**{name: getattr(self, name) for name in self.__slots__})


class CloudDevice:
    __slots__ = (
        "id",
        "guid",
        "udid",
        "serial",
        "imei",
        "wifi_mac",
        "platform",
        "os_version",
        "os_build",
        "model",
        "pretty_model",
        "manufacturer",
        "state",
        "last_checkin",
        "registered",
        "user",
        "space",
        "ownership",
        "compliant",
        "jailbroken",
        "quarantined",
        "attrs",
        "apps",
        "profiles",
    )

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    def copy(self) -> CloudDevice:
        return CloudDevice(**{name: getattr(self, name) for name in self.__slots__})


@dataclass
class Account:
    username: str
    password: str
    roles: frozenset[str]
    gdpr: bool = False
    spaces: tuple[int, ...] | None = None  # Core only; None = every space

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "roles": sorted(self.roles),
        }
        if self.gdpr:
            out["gdpr"] = True
        if self.spaces is not None:
            out["spaces"] = list(self.spaces)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        spaces = data.get("spaces")
        return cls(
            username=data["username"],
            password=data["password"],
            roles=frozenset(data.get("roles", ())),
            gdpr=bool(data.get("gdpr", False)),
            spaces=tuple(spaces) if spaces is not None else None,
        )


@dataclass
class App:
    platform: str  # IOS | ANDROID
    identifier: str
    name: str
    version: str
    managed: bool


@dataclass
class Profile:
    identifier: str
    display_name: str
    organization: str
    managed: bool
    uuid: str
    version: str = "1"
    description: str = ""
    encrypted: bool = True
    has_removal_passcode: bool = False
    removal_disallowed: bool = True

    def to_api(self) -> dict[str, Any]:
        return {
            "encrypted": self.encrypted,
            "hasRemovalPasscode": self.has_removal_passcode,
            "managed": self.managed,
            "removalDisallowed": self.removal_disallowed,
            "description": self.description,
            "displayName": self.display_name,
            "identifier": self.identifier,
            "organization": self.organization,
            "uuid": self.uuid,
            "version": self.version,
        }


@dataclass
class CoreSpace:
    id: int
    name: str


@dataclass
class CoreLabel:
    id: int
    name: str
    description: str = ""
    static: bool = True
    criteria: str = ""
    system: bool = False
    space: int = CORE_GLOBAL_SPACE
    # Static labels: the device ids it was applied to. Dynamic labels: filled by the server.
    members: set[int] = field(default_factory=set)


@dataclass
class CloudSpace:
    id: int
    name: str
    description: str | None = None
    default: bool = False
    priority: int = 1
    domain_rule: str | None = None


@dataclass
class CloudGroup:
    id: int
    name: str
    description: str = ""
    definition: str | None = None
    system_name: str | None = None
    space: int = CLOUD_DEFAULT_SPACE
    # Devices added by hand; rule groups match on `definition` as well.
    static_members: set[int] = field(default_factory=set)
    created_at: int = 1509633426359


@dataclass
class CoreFleet:
    accounts: list[Account]
    spaces: list[CoreSpace]
    labels: list[CoreLabel]
    devices: list[CoreDevice]
    vsp_version: str = catalog.CORE_VSP_VERSION
    cps: bool = True


@dataclass
class CloudFleet:
    accounts: list[Account]
    spaces: list[CloudSpace]
    groups: list[CloudGroup]
    devices: list[CloudDevice]
    tenant: str = "acme"
    app_inventory_per_minute: int = 300


@dataclass
class Fleet:
    users: list[User]
    apps: list[App]
    profiles: list[Profile]
    core: CoreFleet | None = None
    cloud: CloudFleet | None = None
    seed: int | None = None
    generated_at: int = 0


def default_core_accounts() -> list[Account]:
    every = frozenset(CORE_ROLES)
    return [
        Account("admin", "secret", every),
        Account("norole", "secret", every - {"API"}),
        Account("noapps", "secret", every - {"VIEW_APPS"}),
        Account("gdpr", "secret", every, gdpr=True),
    ]


def default_cloud_accounts() -> list[Account]:
    every = frozenset(CLOUD_ROLES)
    return [
        Account("admin@acme.example", "secret", every),
        Account("nocps@acme.example", "secret", every - {"CPS"}),
        Account("readonly@acme.example", "secret", frozenset({"DEVICE_READ"})),
    ]


# ---------------------------------------------------------------------------------------------
# Fleet file: JSON, see README.md. Devices reference users, apps and profiles by index.


def _core_device_row(d: CoreDevice, labels: list[int]) -> dict[str, Any]:
    return {
        "id": d.id,
        "uuid": d.uuid,
        "status": d.status,
        "platform": d.platform,
        "osVersion": d.os_version,
        "model": d.model,
        "manufacturer": d.manufacturer,
        "serialNumber": d.serial,
        "udid": d.udid,
        "imei": d.imei,
        "wifiMacAddress": d.wifi_mac,
        "lastConnectedAt": d.last_seen,
        "registeredAt": d.registered,
        "user": d.user.index,
        "space": d.space,
        "owner": d.owner,
        "compliant": d.compliant,
        "quarantined": d.quarantined,
        "apps": list(d.apps),
        "profiles": list(d.profiles),
        "labels": labels,
    }


def _cloud_device_row(d: CloudDevice, groups: list[int]) -> dict[str, Any]:
    return {
        "id": d.id,
        "guid": d.guid,
        "udid": d.udid,
        "platformType": d.platform,
        "platformVersion": d.os_version,
        "osBuildVersion": d.os_build,
        "deviceModel": d.model,
        "prettyModel": d.pretty_model,
        "manufacturer": d.manufacturer,
        "serialNumber": d.serial,
        "imei": d.imei,
        "wifiMacAddress": d.wifi_mac,
        "registrationState": d.state,
        "lastCheckin": d.last_checkin,
        "registeredAt": d.registered,
        "user": d.user.index,
        "space": d.space,
        "ownershipType": d.ownership,
        "complianceState": d.compliant,
        "jailbroken": d.jailbroken,
        "quarantined": d.quarantined,
        "attrs": d.attrs or {},
        "apps": list(d.apps),
        "profiles": list(d.profiles),
        "groups": groups,
    }


def _reverse_members(owners: Iterable[tuple[int, set[int]]]) -> dict[int, list[int]]:
    by_device: dict[int, list[int]] = {}
    for owner_id, members in owners:
        for device_id in members:
            by_device.setdefault(device_id, []).append(owner_id)
    return by_device


def save_fleet(fleet: Fleet, path: str | Path) -> None:
    """Write the fleet file, one device per line, without building the whole document."""
    head = {
        "format": FORMAT,
        "seed": fleet.seed,
        "generatedAt": fleet.generated_at,
        "users": [
            {
                "uid": u.uid,
                "email": u.email,
                "firstName": u.first_name,
                "lastName": u.last_name,
                "department": u.department,
                "region": u.region,
            }
            for u in fleet.users
        ],
        "apps": [
            {
                "platform": a.platform,
                "identifier": a.identifier,
                "name": a.name,
                "version": a.version,
                "managed": a.managed,
            }
            for a in fleet.apps
        ],
        "profiles": [
            {
                "identifier": p.identifier,
                "displayName": p.display_name,
                "organization": p.organization,
                "managed": p.managed,
                "uuid": p.uuid,
                "version": p.version,
                "description": p.description,
                "encrypted": p.encrypted,
                "hasRemovalPasscode": p.has_removal_passcode,
                "removalDisallowed": p.removal_disallowed,
            }
            for p in fleet.profiles
        ],
    }
    dumps = json.dumps
    with open(path, "w", encoding="utf-8") as out:
        out.write(dumps(head, indent=1)[:-2])
        if fleet.core is not None:
            core = fleet.core
            meta = {
                "vspVersion": core.vsp_version,
                "cps": core.cps,
                "accounts": [a.to_dict() for a in core.accounts],
                "spaces": [{"id": s.id, "name": s.name} for s in core.spaces],
                "labels": [
                    {
                        "id": lb.id,
                        "name": lb.name,
                        "description": lb.description,
                        "static": lb.static,
                        "criteria": lb.criteria,
                        "system": lb.system,
                        "space": lb.space,
                    }
                    for lb in core.labels
                ],
            }
            static = _reverse_members((lb.id, lb.members) for lb in core.labels if lb.static)
            out.write(',\n "core": ' + dumps(meta)[:-1] + ', "devices": [\n')
            out.write(
                ",\n".join(dumps(_core_device_row(d, static.get(d.id, []))) for d in core.devices)
            )
            out.write("\n]}")
        if fleet.cloud is not None:
            cloud = fleet.cloud
            meta = {
                "tenant": cloud.tenant,
                "appInventoryPerMinute": cloud.app_inventory_per_minute,
                "accounts": [a.to_dict() for a in cloud.accounts],
                "spaces": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "description": s.description,
                        "default": s.default,
                        "priority": s.priority,
                        "domainRule": s.domain_rule,
                    }
                    for s in cloud.spaces
                ],
                "groups": [
                    {
                        "id": g.id,
                        "name": g.name,
                        "description": g.description,
                        "definition": g.definition,
                        "systemName": g.system_name,
                        "space": g.space,
                        "createdAt": g.created_at,
                    }
                    for g in cloud.groups
                ],
            }
            static = _reverse_members((g.id, g.static_members) for g in cloud.groups)
            out.write(',\n "cloud": ' + dumps(meta)[:-1] + ', "devices": [\n')
            out.write(
                ",\n".join(dumps(_cloud_device_row(d, static.get(d.id, []))) for d in cloud.devices)
            )
            out.write("\n]}")
        out.write("\n}\n")


def fleet_from_dict(data: dict[str, Any]) -> Fleet:
    if "generate" in data:
        return generate_fleet(**data["generate"])
    if data.get("format", FORMAT) != FORMAT:
        raise ValueError(f"unsupported fleet format {data.get('format')!r}")

    users = [
        User(
            i,
            u["uid"],
            u.get("email", u["uid"]),
            u.get("firstName", ""),
            u.get("lastName", ""),
            u.get("department", ""),
            u.get("region", "AMER"),
        )
        for i, u in enumerate(data.get("users", []))
    ]
    apps = [
        App(
            a["platform"],
            a["identifier"],
            a["name"],
            a.get("version", ""),
            bool(a.get("managed", False)),
        )
        for a in data.get("apps", [])
    ]
    profiles = [
        Profile(
            identifier=p["identifier"],
            display_name=p.get("displayName", ""),
            organization=p.get("organization", ""),
            managed=bool(p.get("managed", False)),
            uuid=p.get("uuid", ""),
            version=str(p.get("version", "1")),
            description=p.get("description", ""),
            encrypted=bool(p.get("encrypted", True)),
            has_removal_passcode=bool(p.get("hasRemovalPasscode", False)),
            removal_disallowed=bool(p.get("removalDisallowed", True)),
        )
        for p in data.get("profiles", [])
    ]
    # Identical app and profile lists share one tuple in memory.
    shared: dict[tuple[int, ...], tuple[int, ...]] = {}

    def interned(values: Iterable[int] | None) -> tuple[int, ...]:
        key = tuple(values or ())
        return shared.setdefault(key, key)

    fleet = Fleet(
        users=users,
        apps=apps,
        profiles=profiles,
        seed=data.get("seed"),
        generated_at=data.get("generatedAt", 0),
    )

    core = data.get("core")
    if core is not None:
        labels = [
            CoreLabel(
                id=lb["id"],
                name=lb["name"],
                description=lb.get("description", ""),
                static=bool(lb.get("static", True)),
                criteria=lb.get("criteria", ""),
                system=bool(lb.get("system", False)),
                space=lb.get("space", CORE_GLOBAL_SPACE),
            )
            for lb in core.get("labels", [])
        ]
        by_id = {lb.id: lb for lb in labels}
        devices = []
        for row in core.get("devices", []):
            device = CoreDevice(
                id=row["id"],
                uuid=row["uuid"],
                status=row.get("status", "ACTIVE"),
                platform=row.get("platform", "iOS"),
                os_version=row.get("osVersion", ""),
                model=row.get("model", ""),
                manufacturer=row.get("manufacturer", ""),
                serial=row.get("serialNumber", ""),
                udid=row.get("udid", ""),
                imei=row.get("imei", ""),
                wifi_mac=row.get("wifiMacAddress", ""),
                last_seen=row.get("lastConnectedAt", 0),
                registered=row.get("registeredAt", 0),
                user=users[row["user"]],
                space=row.get("space", CORE_GLOBAL_SPACE),
                owner=row.get("owner", "COMPANY"),
                compliant=row.get("compliant", True),
                quarantined=row.get("quarantined", False),
                apps=interned(row.get("apps")),
                profiles=interned(row.get("profiles")),
            )
            devices.append(device)
            for label_id in row.get("labels", ()):
                by_id[label_id].members.add(device.id)
        fleet.core = CoreFleet(
            accounts=[Account.from_dict(a) for a in core.get("accounts", [])]
            or default_core_accounts(),
            spaces=[CoreSpace(s["id"], s["name"]) for s in core.get("spaces", [])]
            or [CoreSpace(CORE_GLOBAL_SPACE, "Global")],
            labels=labels,
            devices=devices,
            vsp_version=core.get("vspVersion", catalog.CORE_VSP_VERSION),
            cps=bool(core.get("cps", True)),
        )

    cloud = data.get("cloud")
    if cloud is not None:
        groups = [
            CloudGroup(
                id=g["id"],
                name=g["name"],
                description=g.get("description", ""),
                definition=g.get("definition"),
                system_name=g.get("systemName"),
                space=g.get("space", CLOUD_DEFAULT_SPACE),
                created_at=g.get("createdAt", 1509633426359),
            )
            for g in cloud.get("groups", [])
        ]
        by_id = {g.id: g for g in groups}
        devices = []
        for row in cloud.get("devices", []):
            device = CloudDevice(
                id=row["id"],
                guid=row["guid"],
                udid=row.get("udid"),
                platform=row.get("platformType", "IOS"),
                os_version=row.get("platformVersion"),
                os_build=row.get("osBuildVersion"),
                model=row.get("deviceModel"),
                pretty_model=row.get("prettyModel"),
                manufacturer=row.get("manufacturer"),
                serial=row.get("serialNumber"),
                imei=row.get("imei"),
                wifi_mac=row.get("wifiMacAddress"),
                state=row.get("registrationState", "ACTIVE"),
                last_checkin=row.get("lastCheckin", 0),
                registered=row.get("registeredAt", 0),
                user=users[row["user"]],
                space=row.get("space", CLOUD_DEFAULT_SPACE),
                ownership=row.get("ownershipType", "COMPANY"),
                compliant=row.get("complianceState", True),
                jailbroken=row.get("jailbroken", False),
                quarantined=row.get("quarantined", False),
                attrs={k: list(v) for k, v in row["attrs"].items()} if row.get("attrs") else None,
                apps=interned(row.get("apps")),
                profiles=interned(row.get("profiles")),
            )
            devices.append(device)
            for group_id in row.get("groups", ()):
                by_id[group_id].static_members.add(device.id)
        fleet.cloud = CloudFleet(
            accounts=[Account.from_dict(a) for a in cloud.get("accounts", [])]
            or default_cloud_accounts(),
            spaces=[
                CloudSpace(
                    s["id"],
                    s["name"],
                    s.get("description"),
                    bool(s.get("default")),
                    s.get("priority", 1),
                    s.get("domainRule"),
                )
                for s in cloud.get("spaces", [])
            ]
            or [CloudSpace(CLOUD_DEFAULT_SPACE, "Default Space", None, True, 2, None)],
            groups=groups,
            devices=devices,
            tenant=cloud.get("tenant", "acme"),
            app_inventory_per_minute=cloud.get("appInventoryPerMinute", 300),
        )
    return fleet


def load_fleet(source: Fleet | dict | str | Path) -> Fleet:
    """A Fleet from a Fleet (returned as is), a fleet dict, or the path of a fleet file."""
    if isinstance(source, Fleet):
        return source
    if isinstance(source, dict):
        return fleet_from_dict(source)
    with open(source, encoding="utf-8") as handle:
        return fleet_from_dict(json.load(handle))


# ---------------------------------------------------------------------------------------------
# Generator

_SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_INACTIVE_CORE = ("RETIRED", "RETIRED", "RETIRED", "WIPED", "PENDING")
_INACTIVE_CLOUD = ("RETIRED", "RETIRED", "RETIRE_PENDING", "WIPED", "PENDING")


def _uuid4(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[bits & 3]}{h[17:20]}-{h[20:32]}"


def _serial(bits: int, length: int, prefix: str = "") -> str:
    chars = []
    for _ in range(length):
        bits, rest = divmod(bits, 34)
        chars.append(_SERIAL_ALPHABET[rest])
    return prefix + "".join(chars)


def _imei(rng: random.Random, tac: str) -> str:
    body = tac + f"{rng.getrandbits(20) % 1000000:06d}"
    total = 0
    for position, char in enumerate(body):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


def _mac(bits: int) -> str:
    h = f"{bits:012x}"
    return ":".join(h[i : i + 2] for i in range(0, 12, 2))


def _users(rng: random.Random, count: int) -> list[User]:
    departments = [name for name, _ in catalog.DEPARTMENTS]
    weights = [share for _, share in catalog.DEPARTMENTS]
    chosen = rng.choices(departments, weights, k=count)
    firsts = catalog.FIRST_NAMES
    lasts = catalog.LAST_NAMES
    users = []
    for i in range(count):
        first = firsts[rng.randrange(len(firsts))]
        last = lasts[rng.randrange(len(lasts))]
        # Index-suffixed so names stay unique however large the fleet.
        uid = f"{first[0].lower()}{last.lower()}{i + 1}"
        email = f"{first.lower()}.{last.lower()}{i + 1}@acme.example"
        region = "EMEA" if rng.random() < 0.2 else "AMER"
        users.append(User(i, uid, email, first, last, chosen[i], region))
    return users


def _catalogues(rng: random.Random) -> tuple[list[App], list[Profile]]:
    apps = [App(*row) for row in catalog.APPS]
    profiles = [
        Profile(
            identifier=ident,
            display_name=name,
            organization=org,
            managed=managed,
            uuid=_uuid4(rng.getrandbits(128)),
            description=text,
            removal_disallowed=managed,
        )
        for ident, name, org, managed, text in catalog.PROFILES
    ]
    return apps, profiles


def _app_sets(rng: random.Random, apps: list[App], platform: str, count: int):
    """A pool of realistic per-device app lists; devices pick one, so lists are shared."""
    indexes = [i for i, app in enumerate(apps) if app.platform == platform]
    risky_count = catalog.RISKY_APPS_PER_PLATFORM[platform]
    risky = indexes[-risky_count:]
    normal = indexes[:-risky_count]
    managed = [i for i in normal if apps[i].managed]
    personal = [i for i in normal if not apps[i].managed]
    pool = []
    for n in range(count):
        chosen = set(managed[: 2 + rng.randrange(len(managed) - 1)])
        chosen.update(rng.sample(personal, rng.randrange(3, len(personal))))
        # About one pool entry in twenty carries a risky app.
        if n % 20 == 7:
            chosen.add(risky[rng.randrange(len(risky))])
        pool.append(tuple(sorted(chosen)))
    return pool


def _profile_sets(rng: random.Random, profiles: list[Profile], count: int):
    managed = [i for i, p in enumerate(profiles) if p.managed]
    unmanaged = [i for i, p in enumerate(profiles) if not p.managed]
    pool = []
    for n in range(count):
        chosen = set(managed[:3])
        chosen.update(rng.sample(managed[3:], rng.randrange(0, len(managed) - 2)))
        # Roughly one device in seven also has user-installed (unmanaged) profiles.
        if n % 7 == 3:
            chosen.update(rng.sample(unmanaged, 1 + (n % 2)))
        pool.append(tuple(sorted(chosen)))
    return pool


def _device_owners(rng: random.Random, devices: int, users: int) -> list[int]:
    # Every user gets one device first; the rest go to the first 40% of users, which leaves
    # many users with two to four devices.
    heavy = max(1, int(users * 0.4))
    return [i if i < users else rng.randrange(heavy) for i in range(devices)]


def _generate_core(rng, count, users, apps, profiles, now_ms, inactive_share) -> CoreFleet:
    ios_sets = _app_sets(rng, apps, "IOS", 128)
    android_sets = _app_sets(rng, apps, "ANDROID", 128)
    profile_sets = _profile_sets(rng, profiles, 64)
    labels = [
        CoreLabel(
            -1, "All-Smartphones", "Label for all devices irrespective of OS", False, "", True
        ),
        CoreLabel(1, "iOS", "Label for all iOS devices", False, 'common.platform = "iOS"', True),
        CoreLabel(
            2,
            "Android",
            "Label for all Android devices",
            False,
            'common.platform = "Android"',
            True,
        ),
        CoreLabel(5, "Sales", "Sales team devices"),
        CoreLabel(6, "Engineering", "Engineering devices"),
        CoreLabel(7, "Executives", "Executive leadership devices"),
        CoreLabel(8, "BYOD", "Employee-owned devices", False, 'common.owner = "EMPLOYEE"'),
        CoreLabel(9, "MTD-Quarantine", "Devices quarantined by Mobile Threat Defense"),
        CoreLabel(10, "MTD High Risk", "Devices at high risk according to MTD"),
        CoreLabel(11, "R&D / Lab+Test", "Prototype and lab test devices"),
        CoreLabel(12, "EMEA Field", "EMEA field staff", space=2),
    ]
    by_dept = {
        "Sales": labels[3].members,
        "Engineering": labels[4].members,
        "Executives": labels[5].members,
    }
    lab, high_risk, emea = labels[9].members, labels[8].members, labels[10].members

    owners = _device_owners(rng, count, len(users))
    ios_models = rng.choices(catalog.IOS_MODELS, catalog.IOS_MODEL_WEIGHTS, k=count)
    android_models = rng.choices(catalog.ANDROID_MODELS, catalog.ANDROID_MODEL_WEIGHTS, k=count)
    rand = rng.random
    bits = rng.getrandbits
    devices = []
    for i in range(count):
        device_id = i + 1
        user = users[owners[i]]
        inactive = rand() < inactive_share
        last_seen = now_ms - bits(30) % (14 * DAY_MS if not inactive else 200 * DAY_MS)
        if rand() < 0.62:
            raw, pretty, chip, versions = ios_models[i]
            device = CoreDevice(
                platform="iOS",
                os_version=versions[bits(16) % len(versions)],
                model=pretty,
                manufacturer="Apple",
                serial=_serial(bits(64), 11, "F"),
                udid=f"{chip}-{bits(64):016X}",
                imei=_imei(rng, "35" + chip[4:8] + "08"),
                apps=ios_sets[bits(16) % len(ios_sets)],
                profiles=profile_sets[bits(16) % len(profile_sets)],
            )
        else:
            maker, model, _pretty, versions = android_models[i]
            version = versions[bits(16) % len(versions)]
            prefix = "R5C" if maker == "samsung" else ""
            device = CoreDevice(
                platform="Android",
                os_version=f"{version}.0",
                model=model,
                manufacturer=maker,
                serial=_serial(bits(64), 11 - len(prefix), prefix),
                udid="",
                imei=_imei(rng, "35" + f"{bits(20) % 1000000:06d}"),
                apps=android_sets[bits(16) % len(android_sets)],
                profiles=(),
            )
        device.id = device_id
        device.uuid = _uuid4(bits(128))
        device.status = _INACTIVE_CORE[bits(8) % 5] if inactive else "ACTIVE"
        device.wifi_mac = _mac(bits(48))
        device.last_seen = last_seen
        device.registered = last_seen - (30 + bits(16) % 700) * DAY_MS
        device.user = user
        device.space = 2 if user.region == "EMEA" else CORE_GLOBAL_SPACE
        device.owner = "EMPLOYEE" if rand() < 0.18 else "COMPANY"
        device.compliant = rand() >= 0.07
        device.quarantined = rand() < 0.01
        devices.append(device)

        members = by_dept.get(user.department)
        if members is not None:
            members.add(device_id)
        if user.department == "Engineering" and rand() < 0.1:
            lab.add(device_id)
        if rand() < 0.005:
            high_risk.add(device_id)
        if device.space == 2 and rand() < 0.3:
            emea.add(device_id)

    return CoreFleet(
        accounts=default_core_accounts(),
        spaces=[CoreSpace(CORE_GLOBAL_SPACE, "Global"), CoreSpace(2, "EMEA")],
        labels=labels,
        devices=devices,
    )


def _cloud_groups() -> list[CloudGroup]:
    marketing = CLOUD_MARKETING_SPACE
    return [
        CloudGroup(38001, "All Devices", "Targets any type of device.", None, "ALL_DEVICES"),
        CloudGroup(
            38002, "iOS Devices", "Targets all iOS devices", "PLATFORMTYPE EQ 'IOS'", "IOS_DEVICES"
        ),
        CloudGroup(
            38003,
            "Android Devices",
            "Targets all Android devices",
            "PLATFORMTYPE EQ 'ANDROID'",
            "ANDROID_DEVICES",
        ),
        CloudGroup(
            38010, "Sales Team", "Devices of the Sales account group", "ACCOUNTGROUP EQ 'Sales'"
        ),
        CloudGroup(38011, "Executives", "Executive devices (static membership)"),
        CloudGroup(
            38012,
            "MTD Threat Detected",
            "Devices with an active MTD threat",
            "CFDEVICE[MTDThreat] EQ '1'",
        ),
        CloudGroup(
            38013, "MTD Quarantine", "Devices quarantined by MTD", "CFDEVICE[MTDQuarantine] EQ '1'"
        ),
        CloudGroup(38014, "Corporate Owned", "Company-owned devices", "OWNERSHIPTYPE EQ 'COMPANY'"),
        CloudGroup(
            38101, "All Devices", "Targets any type of device.", None, "ALL_DEVICES", marketing
        ),
        CloudGroup(
            38102,
            "Marketing iPhones",
            "Marketing iOS devices",
            "PLATFORMTYPE EQ 'IOS'",
            None,
            marketing,
        ),
        CloudGroup(
            38103,
            "Marketing MTD Threat",
            "Marketing devices with an MTD threat",
            "CFDEVICE[MTDThreat] EQ '1'",
            None,
            marketing,
        ),
    ]


def _generate_cloud(rng, count, users, apps, profiles, now_ms, inactive_share) -> CloudFleet:
    ios_sets = _app_sets(rng, apps, "IOS", 128)
    android_sets = _app_sets(rng, apps, "ANDROID", 128)
    profile_sets = _profile_sets(rng, profiles, 64)
    groups = _cloud_groups()
    executives = groups[4].static_members
    cost_centers = {name: f"CC-{1000 + 10 * i}" for i, (name, _) in enumerate(catalog.DEPARTMENTS)}

    owners = _device_owners(rng, count, len(users))
    ios_models = rng.choices(catalog.IOS_MODELS, catalog.IOS_MODEL_WEIGHTS, k=count)
    android_models = rng.choices(catalog.ANDROID_MODELS, catalog.ANDROID_MODEL_WEIGHTS, k=count)
    rand = rng.random
    bits = rng.getrandbits
    devices = []
    for i in range(count):
        device_id = 1_000_001 + i
        user = users[owners[i]]
        inactive = rand() < inactive_share
        last_checkin = now_ms - bits(30) % (14 * DAY_MS if not inactive else 200 * DAY_MS)
        if rand() < 0.62:
            raw, pretty, chip, versions = ios_models[i]
            version = versions[bits(16) % len(versions)]
            imei = _imei(rng, "35" + chip[4:8] + "08")
            device = CloudDevice(
                platform="IOS",
                os_version=version,
                os_build=catalog.IOS_BUILDS[version],
                model=raw,
                pretty_model=pretty,
                manufacturer="Apple",
                serial=_serial(bits(64), 11, "F"),
                udid=f"{chip}-{bits(64):016X}",
                imei=f"{imei[:2]} {imei[2:8]} {imei[8:14]} {imei[14]}",
                apps=ios_sets[bits(16) % len(ios_sets)],
                profiles=profile_sets[bits(16) % len(profile_sets)],
            )
        else:
            maker, model, pretty, versions = android_models[i]
            version = versions[bits(16) % len(versions)]
            prefix = "R5C" if maker == "samsung" else ""
            device = CloudDevice(
                platform="ANDROID",
                os_version=version,
                os_build=catalog.ANDROID_BUILDS[version][0],
                model=model,
                pretty_model=pretty,
                manufacturer=maker,
                serial=_serial(bits(64), 11 - len(prefix), prefix),
                udid=None,
                imei=_imei(rng, "35" + f"{bits(20) % 1000000:06d}"),
                apps=android_sets[bits(16) % len(android_sets)],
                profiles=(),
            )
        device.id = device_id
        device.guid = _uuid4(bits(128))
        device.wifi_mac = _mac(bits(48))
        device.state = _INACTIVE_CLOUD[bits(8) % 5] if inactive else "ACTIVE"
        device.last_checkin = last_checkin
        device.registered = last_checkin - (30 + bits(16) % 700) * DAY_MS
        device.user = user
        device.space = (
            CLOUD_MARKETING_SPACE if user.department == "Marketing" else CLOUD_DEFAULT_SPACE
        )
        roll = rand()
        device.ownership = "COMPANY" if roll < 0.75 else "EMPLOYEE" if roll < 0.95 else "UNKNOWN"
        device.compliant = rand() >= 0.07
        device.jailbroken = rand() < 0.004
        device.quarantined = rand() < 0.01
        roll = rand()
        if roll < 0.7:
            device.attrs = None
        else:
            attrs = {"costCenter": [cost_centers.get(user.department, "CC-0000")]}
            if roll > 0.98:
                attrs["MTDThreat"] = ["1"]
            elif roll > 0.95:
                attrs["MTDThreat"] = ["0"]
            device.attrs = attrs
        devices.append(device)
        if user.department == "Executives" and device.space == CLOUD_DEFAULT_SPACE:
            executives.add(device_id)

    return CloudFleet(
        accounts=default_cloud_accounts(),
        spaces=[
            CloudSpace(
                CLOUD_DEFAULT_SPACE,
                "Default Space",
                "Default device management Space.",
                True,
                2,
                None,
            ),
            CloudSpace(
                CLOUD_MARKETING_SPACE,
                "Marketing Space",
                None,
                False,
                1,
                "ACCOUNTGROUP EQ 'Marketing'",
            ),
        ],
        groups=groups,
        devices=devices,
    )


def generate_fleet(
    devices: int = 1000,
    seed: int = 1,
    *,
    core_devices: int | None = None,
    cloud_devices: int | None = None,
    users: int | None = None,
    inactive_share: float = 0.03,
    now_ms: int | None = None,
    products: Iterable[str] = ("core", "cloud"),
) -> Fleet:
    """A realistic fleet, deterministic for a given seed and now_ms.

    `devices` is the count per product; `core_devices` / `cloud_devices` override it, and
    `products` leaves a product out entirely.
    """
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    products = set(products)
    n_core = devices if core_devices is None else core_devices
    n_cloud = devices if cloud_devices is None else cloud_devices
    biggest = max(n_core if "core" in products else 0, n_cloud if "cloud" in products else 0)
    n_users = users if users is not None else max(2, int(biggest * 0.62))

    people = _users(rng, n_users)
    apps, profiles = _catalogues(rng)
    fleet = Fleet(users=people, apps=apps, profiles=profiles, seed=seed, generated_at=now_ms)
    if "core" in products:
        fleet.core = _generate_core(rng, n_core, people, apps, profiles, now_ms, inactive_share)
    if "cloud" in products:
        fleet.cloud = _generate_cloud(rng, n_cloud, people, apps, profiles, now_ms, inactive_share)
    return fleet
