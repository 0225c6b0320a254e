"""MobileIron Cloud (Ivanti Neurons for MDM) API emulator, /api/v1 and the CPS /msa/v1/cps calls.

Device groups are evaluated in one place (`group_members`), so the CPS device list, the
`DEVICEGROUP` search filter and a device's `groups[]` always agree.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from . import catalog
from .common import HttpError, KeyIndex, ProductApp, Request, Response, json_response, page_slice
from .fleet import CloudDevice, CloudGroup, Fleet

SEARCH_MAX_ROWS = 500
GROUP_MAX_ROWS = 50
CPS_MAX_LIMIT = 50
CPS_MAX_IDENTIFIERS = 50

ROWS_RANGE_ERROR = {
    "errors": {
        "globalErrors": None,
        "fieldErrors": [{"code": "Range", "message": "must be between 1 and 500", "field": "rows"}],
    },
    "result": None,
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


# Device attributes usable in group definitions and in `fq`, by upper-cased name.
ATTRIBUTES: dict[str, Callable[[CloudDevice], Any]] = {
    "ID": lambda d: d.id,
    "DEVICEID": lambda d: d.id,
    "GUID": lambda d: d.guid,
    "UDID": lambda d: d.udid,
    "SERIALNUMBER": lambda d: d.serial,
    "IMEI": lambda d: d.imei,
    "WIFIMACADDRESS": lambda d: d.wifi_mac,
    "EMAILADDRESS": lambda d: d.user.email,
    "UID": lambda d: d.user.email,
    "PLATFORMTYPE": lambda d: d.platform,
    "PLATFORMVERSION": lambda d: d.os_version,
    "REGISTRATIONSTATE": lambda d: d.state,
    "OWNERSHIPTYPE": lambda d: d.ownership,
    "MANUFACTURER": lambda d: d.manufacturer,
    "DEVICEMODEL": lambda d: d.model,
    "PRETTYMODEL": lambda d: d.pretty_model,
    "COMPLIANCESTATE": lambda d: d.compliant,
    "JAILBROKEN": lambda d: d.jailbroken,
    "QUARANTINED": lambda d: d.quarantined,
    # Several values: the user's account groups.
    "ACCOUNTGROUP": lambda d: d.user.account_groups,
}
INDEXED = ("ID", "DEVICEID", "GUID", "UDID", "SERIALNUMBER")

_DEFINITION_TERM = re.compile(
    r"^\s*(?P<field>CFDEVICE\[(?P<attr>[^\]]+)\]|[A-Za-z_]+)\s+(?P<op>EQ|NEQ|NE)\s+"
    r"'(?P<value>(?:[^']|'')*)'\s*$",
    re.IGNORECASE,
)
_FQ_EQUALS = re.compile(r"^\s*(?P<field>[A-Za-z_]+)\s*(?P<op>!=|=)\s*(?P<value>.*?)\s*$")


def _term(text: str) -> tuple[str, str | None, bool, str]:
    """One `FIELD EQ 'v'` / `field=v` condition as (FIELD, cf attribute, negated, value)."""
    match = _DEFINITION_TERM.match(text)
    if match:
        attr = match["attr"]
        name = "CFDEVICE" if attr is not None else match["field"].upper()
        return name, attr, match["op"].upper() != "EQ", match["value"].replace("''", "'")
    match = _FQ_EQUALS.match(text)
    if match:
        value = match["value"]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return match["field"].upper(), None, match["op"] == "!=", value
    raise HttpError(400, f"Unsupported filter: {text.strip()}")


def parse_filter(text: str, *, allow_or: bool) -> list[list[tuple]]:
    """A definition or fq into OR-of-AND terms (no parentheses, AND binds tighter)."""
    text = text.strip()
    if not text:
        return []
    unquoted = re.sub(r"'(?:[^']|'')*'", "''", text)
    if "(" in unquoted or ")" in unquoted:
        raise HttpError(400, f"Unsupported filter (parentheses): {text}")
    alternatives = re.split(r"\s+OR\s+", text, flags=re.IGNORECASE)
    if len(alternatives) > 1 and not allow_or:
        raise HttpError(400, f"Unsupported filter (OR): {text}")
    result = []
    for alternative in alternatives:
        terms = [_term(part) for part in re.split(r"\s+AND\s+", alternative, flags=re.IGNORECASE)]
        for name, _attr, _neg, _value in terms:
            if name not in ATTRIBUTES and name not in ("CFDEVICE", "DEVICEGROUP"):
                raise HttpError(400, f"Unsupported filter field: {name}")
        result.append(terms)
    return result


def compile_term(term: tuple) -> Callable[[CloudDevice], bool]:
    """A fast test for one condition; group membership runs it over whole spaces."""
    name, attr, negated, value = term
    want = value.lower()
    if name == "CFDEVICE":

        def test(d: CloudDevice) -> bool:
            values = d.attrs.get(attr) if d.attrs else None
            hit = bool(values) and any(v.lower() == want for v in values)
            return hit != negated
    elif name == "ACCOUNTGROUP":

        def test(d: CloudDevice) -> bool:
            return any(g.lower() == want for g in d.user.account_groups) != negated
    else:
        getter = ATTRIBUTES[name]

        def test(d: CloudDevice) -> bool:
            found = getter(d)
            return (found is not None and _text(found) == want) != negated

    return test


def compile_filter(alternatives: list[list[tuple]]) -> Callable[[CloudDevice], bool]:
    tests = [[compile_term(t) for t in terms] for terms in alternatives]
    if len(tests) == 1 and len(tests[0]) == 1:
        return tests[0][0]
    return lambda d: any(all(test(d) for test in terms) for terms in tests)


def _tree(definition: str | None) -> dict | None:
    if not definition:
        return None
    alternatives = parse_filter(definition, allow_or=True)

    def leaf(term):
        name, attr, negated, value = term
        return {
            "operator": "LEAF",
            "rule": {
                "field": name,
                "cfAttributeName": attr,
                "operator": "NEQ" if negated else "EQ",
                "values": [value],
            },
            "children": None,
        }

    def conjunction(terms):
        if len(terms) == 1:
            return leaf(terms[0])
        return {"operator": "AND", "rule": None, "children": [leaf(t) for t in terms]}

    if len(alternatives) == 1:
        return conjunction(alternatives[0])
    return {"operator": "OR", "rule": None, "children": [conjunction(a) for a in alternatives]}


def render_error(err: HttpError) -> Response:
    """Cloud's `{"errors": ..., "result": null}` envelope."""
    if err.body is not None:
        return json_response(err.body, err.status, err.headers)
    if err.field_errors:
        errors = {"globalErrors": None, "fieldErrors": err.field_errors}
    else:
        errors = {"globalErrors": [{"message": err.message}], "fieldErrors": None}
    return json_response({"errors": errors, "result": None}, err.status, err.headers)


def _tablet(model: str | None) -> bool:
    return bool(model) and (model.startswith("iPad") or model.startswith("SM-X"))


class CloudApp(ProductApp):
    name = "cloud"

    def __init__(self, fleet: Fleet):
        cloud = fleet.cloud
        super().__init__(cloud.accounts)
        self.fleet = fleet
        self.cloud = cloud
        self.spaces = {s.id: s for s in cloud.spaces}
        self.default_space = next((s.id for s in cloud.spaces if s.default), cloud.spaces[0].id)
        cloud.devices.sort(key=lambda d: d.id)
        self.devices = cloud.devices
        self.by_id: dict[int, CloudDevice] = {}
        self.by_guid = KeyIndex()
        self.by_udid = KeyIndex(upper=True)
        self.by_serial = KeyIndex(upper=True)
        self.space_devices: dict[int, list[CloudDevice]] = {s: [] for s in self.spaces}
        for device in self.devices:
            self._index(device)
        # Bumped when a device of the space is added or changed.
        self.space_versions: dict[int, int] = dict.fromkeys(self.spaces, 0)
        self.groups: dict[int, CloudGroup] = {g.id: g for g in cloud.groups}
        self.predicates: dict[int, Callable[[CloudDevice], bool] | None] = {}
        self.group_members: dict[int, set[int]] = {}
        self.group_excluded: dict[int, set[int]] = {}
        self.group_versions: dict[int, int] = {}
        for group in cloud.groups:
            self._compile_group(group)
        self.locks: dict[int, dict[str, Any]] = {}
        self.app_inventory_per_minute = cloud.app_inventory_per_minute
        self._app_calls: deque[float] = deque()
        self._cache: dict[tuple, tuple] = {}
        # Record keys that never vary per device, serialised once per platform.
        self._constant_json: dict[str, str] = {}
        self.next_device_id = max((d.id for d in self.devices), default=1_000_000) + 1
        self._routes()

    # -- state -------------------------------------------------------------------------------

    def _index(self, device: CloudDevice) -> None:
        self.by_id[device.id] = device
        self.by_guid.add(device.guid, device)
        if device.udid:
            self.by_udid.add(device.udid, device)
        if device.serial:
            self.by_serial.add(device.serial, device)
        self.space_devices.setdefault(device.space, []).append(device)

    def _compile_group(self, group: CloudGroup) -> None:
        if group.definition:
            self.predicates[group.id] = compile_filter(
                parse_filter(group.definition, allow_or=True)
            )
        elif group.system_name == "ALL_DEVICES":
            self.predicates[group.id] = lambda d: True
        else:
            self.predicates[group.id] = None
        self.group_excluded.setdefault(group.id, set())
        self.group_members[group.id] = {
            d.id for d in self.space_devices.get(group.space, ()) if self._member(d, group)
        }
        self.touch_group(group.id)

    def _member(self, d: CloudDevice, group: CloudGroup) -> bool:
        if d.space != group.space:
            return False
        if d.id in group.static_members:
            return True
        predicate = self.predicates.get(group.id)
        if predicate is None or d.id in self.group_excluded[group.id]:
            return False
        return predicate(d)

    def touch_group(self, group_id: int) -> None:
        self.group_versions[group_id] = self.group_versions.get(group_id, 0) + 1

    def refresh_device(self, d: CloudDevice, *, searchable: bool = True) -> None:
        """Re-evaluate every group after a device changed (attributes, state, platform...).

        `searchable=False` says only custom attributes changed: no search filter reads them,
        so cached search results of the space stay valid.
        """
        if searchable:
            self.space_versions[d.space] = self.space_versions.get(d.space, 0) + 1
        for group in self.groups.values():
            inside = self._member(d, group)
            members = self.group_members[group.id]
            if inside != (d.id in members):
                (members.add if inside else members.discard)(d.id)
                self.touch_group(group.id)

    def add_device(self, d: CloudDevice) -> None:
        self.devices.append(d)
        self._index(d)
        self.refresh_device(d)

    def groups_of(self, d: CloudDevice) -> list[CloudGroup]:
        return [
            g
            for g in sorted(self.groups.values(), key=lambda g: g.id)
            if d.id in self.group_members[g.id]
        ]

    def device(self, ident: str) -> CloudDevice | None:
        ident = unquote(ident)
        if ident.isdigit():
            return self.by_id.get(int(ident))
        return self.by_guid.first(ident)

    def find(self, space: int, fq: str, q: str, descending: bool = False):
        """(devices, facets) for a search, in id order; cached until the data changes."""
        alternatives = parse_filter(fq, allow_or=False)
        terms = alternatives[0] if alternatives else []
        group_ids = []
        for name, _attr, negated, value in terms:
            if name == "DEVICEGROUP":
                if negated or not value.isdigit():
                    raise HttpError(400, f"Unsupported DEVICEGROUP filter: {value}")
                group_ids.append(int(value))
        plain = [t for t in terms if t[0] != "DEVICEGROUP"]
        tests = [compile_term(t) for t in plain]

        def keep(d: CloudDevice) -> bool:
            return (
                all(test(d) for test in tests)
                and all(d.id in self.group_members.get(g, ()) for g in group_ids)
                and (not q or self._text_match(d, q))
            )

        indexed = next((t for t in plain if t[0] in INDEXED and not t[2]), None)
        if indexed is not None:
            found = [
                d for d in self._lookup(indexed[0], indexed[3]) if d.space == space and keep(d)
            ]
            if descending:
                found.reverse()
            return found, self._facets(found)

        key = (space, tuple(plain), tuple(group_ids), q, descending)
        version = (
            self.space_versions.get(space, 0),
            tuple(self.group_versions.get(g, 0) for g in group_ids),
        )
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        base = self.space_devices.get(space, [])
        if group_ids and all(g in self.group_members for g in group_ids):
            smallest = min((self.group_members[g] for g in group_ids), key=len)
            by_id = self.by_id
            base = [by_id[i] for i in sorted(smallest) if by_id[i].space == space]
        found = [d for d in base if keep(d)] if (plain or group_ids or q) else list(base)
        if descending:
            found.reverse()
        facets = self._facets(found)
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (version, found, facets)
        return found, facets

    def _lookup(self, name: str, value: str) -> list[CloudDevice]:
        if name in ("ID", "DEVICEID"):
            found = self.by_id.get(int(value)) if value.isdigit() else None
            return [found] if found else []
        if name == "GUID":
            return self.by_guid.get(value)
        index = self.by_udid if name == "UDID" else self.by_serial
        return sorted(index.get(value), key=lambda d: d.id)

    @staticmethod
    def _text_match(d: CloudDevice, q: str) -> bool:
        q = q.lower()
        return any(
            q in v.lower()
            for v in (d.serial, d.udid, d.imei, d.wifi_mac, d.user.email, d.guid, d.pretty_model)
            if v
        )

    @staticmethod
    def _facets(devices: list[CloudDevice]) -> dict[str, dict[str, int]]:
        platforms: dict[str, int] = {}
        states: dict[str, int] = {}
        for d in devices:
            platforms[d.platform] = platforms.get(d.platform, 0) + 1
            states[d.state] = states.get(d.state, 0) + 1
        return {"PLATFORMTYPE": platforms, "REGISTRATIONSTATE": states}

    # -- serialisation -----------------------------------------------------------------------

    def _constants(self, platform: str) -> dict[str, Any]:
        ios = platform == "IOS"
        return {
            "phoneNumber": "",
            "imei2": None,
            "imsi": "",
            "locatorServiceEnabled": False,
            "meid": "",
            "wifiMacAddressForInventory": None,
            "systemUpdateInformation": None,
            "altSerialNumber": None,
            "cellularTechnology": "GSM",
            "currentCarrierNetwork": "",
            "subscriberCarrierNetwork": "UNKNOWN",
            "locale": "en_US",
            "roaming": False,
            "iccid": None,
            "currentMcc": None,
            "currentMnc": None,
            "subscriberMcc": None,
            "subscriberMnc": None,
            "latitude": None,
            "longitude": None,
            "locationLastCapturedAt": None,
            "lostModeEnabled": False if ios else None,
            "multiUser": False,
            "maxResidentUsers": None,
            "availableCapacity": 61.2,
            "totalCapacity": 128.0,
            "clusterIdentifier": "CLOUD",
            "deviceSource": "CLOUD",
            "passcodeCompliant": True,
            "passcodeCompliantWithProfiles": True,
            "locationStatusDetail": None,
            "androidBuildFingerprint": None,
            "androidZebraPatchLevel": None,
            "androidSystemUpdateStatus": None if ios else "UNKNOWN",
            "salesCode": None,
            "firmwareVersion": None,
            "uptime": None,
            "androidWorkContainerEnabled": False,
            "androidWorkUid": None,
            "androidManagedByGoogle": not ios,
            "fcmEnabled": not ios,
            "actionExceptionCodes": [],
            "supportLockMessage": ios,
            "kioskState": "NOT_CONFIGURED",
            "easDeviceIdentifiers": None,
            "appEasIdentifiers": None,
            "androidDeviceOwnerModeEnabled": not ios,
            "windowsDeviceType": None,
            "secureAppsStatus": None,
            "secureAppsEncryptionStatus": None,
            "secureAppsEncryptionMode": None,
            "tpmSpecificationVersion": None,
            "bridgeVersion": None,
            "bridgeDeviceDataLastCapturedAt": None,
            "lastHotfixId": None,
            "lastHotfixInstalledOn": None,
            "mamOnly": False,
            "authOnly": False,
            "ipAddress": None,
            "depEnrolled": ios,
            "depEligible": ios,
            "mobileThreatDefenseGeneralStatus": "NA",
            "antiPhishingGeneralStatus": "NA",
            "samsungEfotaCapable": False,
            "currentCountryName": None,
            "currentCountryCode": None,
            "homeCountryName": None,
            "homeCountryCode": None,
            "userPreferenceCSVHeader": None,
            "clientAppBundleId": "com.mobileiron.anyware.ios" if ios else "com.forgepond.locksmith",
        }

    def _record(self, d: CloudDevice) -> dict[str, Any]:
        """The per-device part of a device record (search results and detail view)."""
        ios = d.platform == "IOS"
        user = d.user
        name = f"{user.first_name}'s {d.pretty_model}" if user.first_name else d.pretty_model
        compliant = bool(d.compliant)
        space = self.spaces.get(d.space)
        return {
            "id": d.id,
            "guid": d.guid,
            "mdmChannelId": f"{d.id:08x}-0000-4e7e-a95a-{(d.id * 7919) & 0xFFFFFFFFFFFF:012x}",
            "deviceModel": d.model,
            "deviceName": name,
            "platformType": d.platform,
            "platformVersion": d.os_version,
            "osBuildVersion": d.os_build,
            "lastCheckin": d.last_checkin,
            "registrationState": d.state,
            "displayName": user.display_name,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "uid": user.email,
            "emailAddress": user.email,
            "clientVersion": "12.11.0" if ios else "12.6.0.0",
            "manufacturer": d.manufacturer,
            "imei": d.imei,
            "wifiMacAddress": d.wifi_mac,
            "serialNumber": d.serial,
            "udid": d.udid,
            "prettyModel": d.pretty_model,
            "lastRegistrationTime": d.registered,
            "clientLastCheckin": d.last_checkin,
            "ownershipType": d.ownership,
            "complianceState": compliant,
            "policyViolationCount": 0 if compliant else 1,
            "violatedPolicies": None if compliant else ["Out of Contact"],
            "quarantined": bool(d.quarantined),
            "jailbroken": bool(d.jailbroken),
            "blocked": False,
            "supervised": ios and d.ownership == "COMPANY",
            "clientDeviceIdentifier": None if ios else f"{d.id:016x}{d.guid.replace('-', '')}",
            "androidBuildId": None if ios else d.os_build,
            "ownerId": 324_000_000 + user.index,
            "customAttributes": {"attrs": d.attrs or {}},
            "dmPartitionId": d.space,
            "dmPartitionName": space.name if space else None,
            "entityName": name,
        }

    def search_record_json(self, d: CloudDevice) -> str:
        constants = self._constant_json.get(d.platform)
        if constants is None:
            constants = json.dumps(self._constants(d.platform), separators=(",", ":"))[1:]
            self._constant_json[d.platform] = constants
        return json.dumps(self._record(d), separators=(",", ":"))[:-1] + "," + constants

    def detail_record(self, d: CloudDevice) -> dict[str, Any]:
        ios = d.platform == "IOS"
        record = self._record(d)
        record.update(self._constants(d.platform))
        patch = None if ios else catalog.ANDROID_BUILDS.get(d.os_version or "", (None, None))[1]
        record.update(
            {
                "groups": [self.group_object(g) for g in self.groups_of(d)],
                "privacyPolicy": {
                    "policyId": 1163890,
                    "policyName": "Default Privacy Policy",
                    "locateStatus": "DISABLED",
                    "wipeDisabled": False,
                },
                "osPlatform": "iOS" if ios else "Android",
                "osEdition": None,
                "deviceFamily": "TABLET" if _tablet(d.model) else "PHONE",
                "androidId": None if ios else d.guid.replace("-", "")[:16],
                "androidSecurityPatchLevel": patch,
                "androidWorkCapable": not ios,
                "androidWorkEnabled": not ios,
                "androidWorkProfileEnabled": False,
                "androidDeviceOwnerEnabled": not ios,
                "mdmDeviceIdentifier": d.udid or "",
                "apnsCapable": ios,
                "clientRegistered": True,
                "enrollerId": 324_000_000 + d.user.index,
            }
        )
        return record

    def group_object(self, g: CloudGroup) -> dict[str, Any]:
        space = self.spaces.get(g.space)
        return {
            "id": g.id,
            "createdAt": g.created_at,
            "createdBy": 1,
            "modifiedAt": g.created_at,
            "modifiedBy": None,
            "visible": True,
            "dmPartitionId": g.space,
            "name": g.name,
            "description": g.description,
            "type": "DEVICE",
            "definition": g.definition,
            "mutable": g.system_name is None,
            "memberCount": len(self.group_members.get(g.id, ())),
            "systemName": g.system_name,
            "membershipStatic": g.definition is None and g.system_name is None,
            "dmPartitionName": space.name if space else None,
            "treeView": _tree(g.definition),
            "actionExceptionCodes": None,
            "assignedConfigs": None,
            "assignedPolicies": None,
            "applicationCount": None,
            "staticMembers": sorted(g.static_members) if g.static_members else None,
        }

    def cps_device(self, d: CloudDevice) -> dict[str, Any]:
        record = {
            "compliant": bool(d.compliant),
            "quarantined": bool(d.quarantined),
            "blocked": False,
            "compromised": bool(d.jailbroken),
            "status": d.state,
            "lastCheckInTime": d.last_checkin,
            "registrationTime": d.registered,
            "identifier": d.guid,
            "imei": d.imei,
            "macAddress": d.wifi_mac,
            "manufacturer": d.manufacturer,
            "model": d.model,
            "os": d.platform,
            "osVersion": d.os_version,
            "phoneNumber": "",
            "serialNumber": d.serial,
            "userId": d.user.email,
            "userUuid": d.user.uuid,
        }
        if d.udid:
            record["iosUdid"] = d.udid
        for name, values in (d.attrs or {}).items():
            record.setdefault(name, values[0] if values else "")
        return record

    # -- helpers -----------------------------------------------------------------------------

    def error(self, err: HttpError) -> Response:
        return render_error(err)

    def _partition(self, req: Request) -> int:
        raw = req.param("dmPartitionId")
        if raw in (None, ""):
            return self.default_space
        if not raw.isdigit() or int(raw) not in self.spaces:
            raise HttpError(
                400,
                f"Invalid dmPartitionId: {raw}",
                field_errors=[
                    {"code": "Invalid", "message": "unknown space", "field": "dmPartitionId"}
                ],
            )
        return int(raw)

    @staticmethod
    def _range(req: Request, name: str, default: int, high: int, body: Any = None) -> int:
        raw = req.param(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(
                400,
                f"Invalid {name}",
                field_errors=[
                    {"code": "typeMismatch", "message": "must be a number", "field": name}
                ],
            ) from None
        if not 1 <= value <= high:
            raise HttpError(
                400,
                f"Invalid {name}",
                body=body,
                field_errors=[
                    {"code": "Range", "message": f"must be between 1 and {high}", "field": name}
                ],
            )
        return value

    @staticmethod
    def _offset(req: Request, name: str) -> int:
        raw = req.param(name)
        if raw in (None, ""):
            return 0
        if not raw.isdigit():
            raise HttpError(
                400,
                f"Invalid {name}",
                field_errors=[
                    {"code": "Min", "message": "must be greater than or equal to 0", "field": name}
                ],
            )
        return int(raw)

    def _ids(self, req: Request) -> list[str]:
        values = list(req.params("ids"))
        content_type = req.headers.get("Content-Type", "") if req.headers else ""
        if req.body and "form-urlencoded" in content_type:
            values += parse_qs(req.body.decode("utf-8", "replace")).get("ids", [])
        return [part.strip() for value in values for part in value.split(",") if part.strip()]

    def _rate_limit(self) -> None:
        limit = self.app_inventory_per_minute
        if not limit:
            return
        now = time.monotonic()
        calls = self._app_calls
        while calls and calls[0] <= now - 60:
            calls.popleft()
        if len(calls) >= limit:
            retry_after = max(1, math.ceil(60 - (now - calls[0])))
            raise HttpError(
                429,
                "Too many requests: application inventory rate limit exceeded",
                headers=[("Retry-After", str(retry_after))],
            )
        calls.append(now)

    def set_attrs(self, d: CloudDevice, attrs: dict[str, list[str]]) -> None:
        d.attrs = {k: list(v) for k, v in attrs.items()} or None
        self.refresh_device(d, searchable=False)

    # -- routes ------------------------------------------------------------------------------

    def _routes(self) -> None:
        route = self.route

        @route("GET", r"^/api/v1/tenant/partition/device$", "DEVICE_READ")
        def partitions(req, match):
            rows = self._range(req, "rows", 50, SEARCH_MAX_ROWS)
            start = self._offset(req, "start")
            spaces = sorted(self.spaces.values(), key=lambda s: (not s.default, s.id))
            page, _empty = page_slice(req, spaces, start, rows)
            results = []
            for s in page:
                group_count = sum(1 for g in self.groups.values() if g.space == s.id)
                results.append(
                    {
                        "id": s.id,
                        "createdAt": 1509633426359,
                        "createdBy": 1,
                        "modifiedAt": 1598483659513,
                        "modifiedBy": 1,
                        "name": s.name,
                        "description": s.description,
                        "domainRule": s.domain_rule,
                        "defaultPartition": s.default,
                        "priority": s.priority,
                        "guid": None,
                        "appCount": 0,
                        "contentCount": 0,
                        "memberCount": 0,
                        "countLastUpdatedAt": None,
                        "treeView": _tree(s.domain_rule),
                        "deviceCount": len(self.space_devices.get(s.id, ())),
                        "configurationCount": 46 if s.default else 0,
                        "policyCount": 6,
                        "deviceGroupCount": group_count,
                    }
                )
            return json_response(
                {
                    "errors": None,
                    "result": {
                        "searchResults": results,
                        "totalCount": len(spaces),
                        "offset": start,
                        "limit": rows,
                    },
                }
            )

        @route("GET", r"^/api/v1/metadata/tenant$", "DEVICE_READ")
        def tenant(req, match):
            return json_response(
                {
                    "errors": None,
                    "result": {
                        "tenantId": 1_000_021,
                        "name": self.cloud.tenant,
                        "defaultDmPartitionId": self.default_space,
                        "permissions": [
                            "device.read",
                            "device.update",
                            "device.lock",
                            "device.unlock",
                            "device.wipe",
                            "device.retire",
                            "device.force.checkin",
                            "device.send.message",
                            "app.inventory.read",
                        ],
                    },
                }
            )

        @route("GET", r"^/api/v1/device$", "DEVICE_READ")
        def search(req, match):
            started = time.perf_counter()
            space = self._partition(req)
            rows = self._range(req, "rows", 50, SEARCH_MAX_ROWS, body=ROWS_RANGE_ERROR)
            start = self._offset(req, "start")
            order = (req.param("sortFields[0].order") or "ASC").upper()
            found, facets = self.find(
                space, req.param("fq") or "", req.param("q") or "", descending=order == "DESC"
            )
            page, _empty = page_slice(req, found, start, rows)
            # Records are spliced as text: the constant half of each is serialised once.
            records = ",".join(self.search_record_json(d) for d in page)
            elapsed = int((time.perf_counter() - started) * 1000)
            body = (
                f'{{"errors":null,"result":{{"totalCount":{len(found)},'
                f'"searchResults":[{records}],"offset":{start},"limit":{rows},'
                f'"queryTime":{elapsed},'
                f'"facetedResults":{json.dumps(facets, separators=(",", ":"))},'
                f'"totalUnfilteredResultCount":{len(self.space_devices.get(space, ()))}}}}}'
            )
            return Response(200, body.encode())

        @route("PUT", r"^/api/v1/device/lock$", "DEVICE_ACTIONS")
        def lock(req, match):
            idents = self._ids(req)
            if not idents:
                raise HttpError(
                    400,
                    "Missing required parameter 'ids'",
                    field_errors=[
                        {"code": "NotNull", "message": "must not be null", "field": "ids"}
                    ],
                )
            devices = []
            for ident in idents:
                device = self.device(ident)
                if device is None:
                    raise HttpError(404, f"Device {ident} not found")
                if device.state != "ACTIVE":
                    raise HttpError(400, f"Device {ident} is {device.state}; lock needs ACTIVE")
                devices.append(device)
            message = req.param("message") or ""
            now = int(time.time() * 1000)
            for device in devices:
                entry = self.locks.setdefault(device.id, {"count": 0})
                entry.update(
                    locked=True, message=message, at=now, phoneNumber=req.param("phoneNumber")
                )
                entry["count"] += 1
            return json_response({"errors": None, "result": 1})

        @route("GET", r"^/api/v1/device/(?P<id>[^/]+)$", "DEVICE_READ")
        def detail(req, match):
            device = self.device(match["id"])
            raw_space = req.param("dmPartitionId")
            if raw_space not in (None, "") and device is not None:
                space = self._partition(req)
                if device.space != space:
                    device = None
            if device is None:
                raise HttpError(404, f"Device {unquote(match['id'])} not found")
            return json_response({"errors": None, "result": self.detail_record(device)})

        @route("GET", r"^/api/v1/device/(?P<id>[^/]+)/customattributes$", "DEVICE_READ")
        def get_attrs(req, match):
            device = self.device(match["id"])
            if device is None:
                raise HttpError(404, f"Device {unquote(match['id'])} not found")
            return json_response({"attrs": {k: list(v) for k, v in (device.attrs or {}).items()}})

        @route("PUT", r"^/api/v1/device/(?P<id>[^/]+)/customattributes$", "DEVICE_MANAGEMENT")
        def put_attrs(req, match):
            device = self.device(match["id"])
            if device is None:
                raise HttpError(404, f"Device {unquote(match['id'])} not found")
            body = req.json()
            attrs = body.get("attrs") if isinstance(body, dict) else None
            if not isinstance(attrs, dict):
                raise HttpError(400, 'Body must be {"attrs": {"name": ["value"]}}')
            clean: dict[str, list[str]] = {}
            for name, values in attrs.items():
                if isinstance(values, str):
                    values = [values]
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise HttpError(
                        400,
                        f"Attribute {name}: values must be strings",
                        field_errors=[
                            {
                                "code": "typeMismatch",
                                "message": "must be a list of strings",
                                "field": f"attrs.{name}",
                            }
                        ],
                    )
                if not values or any(v == "" for v in values):
                    raise HttpError(
                        400,
                        f"Attribute {name}: empty values are not allowed",
                        field_errors=[
                            {
                                "code": "NotEmpty",
                                "message": "must not be empty",
                                "field": f"attrs.{name}",
                            }
                        ],
                    )
                clean[name] = values
            self.set_attrs(device, clean)
            return json_response({"errors": None, "result": 1})

        @route("GET", r"^/api/v1/rule_group$", "DEVICE_READ")
        def rule_groups(req, match):
            space = self._partition(req)
            rows = self._range(req, "rows", GROUP_MAX_ROWS, GROUP_MAX_ROWS)
            start = self._offset(req, "start")
            groups = sorted(
                (g for g in self.groups.values() if g.space == space), key=lambda g: g.id
            )
            page, _empty = page_slice(req, groups, start, rows)
            return json_response(
                {
                    "errors": None,
                    "result": {
                        "totalCount": len(groups),
                        "searchResults": [self.group_object(g) for g in page],
                        "offset": start,
                        "limit": rows,
                    },
                }
            )

        @route("GET", r"^/msa/v1/cps/rule$", "CPS")
        def cps_rules(req, match):
            limit = self._range(req, "limit", CPS_MAX_LIMIT, CPS_MAX_LIMIT)
            offset = self._offset(req, "offset")
            prefix = (req.param("name") or "").lower()
            groups = sorted(
                (
                    g
                    for g in self.groups.values()
                    if g.space == self.default_space and g.name.lower().startswith(prefix)
                ),
                key=lambda g: g.id,
            )
            page, _empty = page_slice(req, groups, offset, limit)
            return json_response(
                {
                    "searchResults": [
                        {
                            "id": g.id,
                            "name": g.name,
                            "description": g.description,
                            "definition": g.definition,
                        }
                        for g in page
                    ],
                    "results": len(groups),
                    "offset": offset,
                    "limit": limit,
                }
            )

        @route("GET", r"^/msa/v1/cps/device$", "CPS")
        def cps_devices(req, match):
            raw = req.param("ruleId")
            if raw in (None, "") or not raw.isdigit():
                raise HttpError(400, "Missing or invalid parameter 'ruleId'")
            group = self.groups.get(int(raw))
            if group is None:
                raise HttpError(404, f"Device group {raw} not found")
            if group.space != self.default_space:
                raise HttpError(
                    400,
                    f"Device group {raw} is not in the default space; "
                    "CPS serves the default space only",
                )
            limit = self._range(req, "limit", CPS_MAX_LIMIT, CPS_MAX_LIMIT)
            offset = self._offset(req, "offset")
            found, _facets = self.find(group.space, f"DEVICEGROUP EQ '{group.id}'", "")
            page, _empty = page_slice(req, found, offset, limit)
            return json_response(
                {
                    "searchResults": [self.cps_device(d) for d in page],
                    "results": len(found),
                    "offset": offset,
                    "limit": limit,
                }
            )

        def identified(req) -> tuple[list, str]:
            body = req.json()
            idents = body.get("identifiers") if isinstance(body, dict) else None
            kind = body.get("identifierType", "MDM_IDENTIFIER") if isinstance(body, dict) else None
            if not isinstance(idents, list) or not idents:
                raise HttpError(400, "Body must carry a non-empty 'identifiers' list")
            if len(idents) > CPS_MAX_IDENTIFIERS:
                raise HttpError(400, f"At most {CPS_MAX_IDENTIFIERS} identifiers per call")
            if kind not in ("GUID", "MDM_IDENTIFIER"):
                raise HttpError(400, f"Unsupported identifierType {kind!r}")
            found = []
            for ident in idents:
                if not isinstance(ident, str):
                    continue
                if kind == "GUID":
                    device = self.by_guid.first(ident)
                else:
                    matches = self.by_udid.get(ident)
                    device = (
                        max(matches, key=lambda d: (d.state == "ACTIVE", d.id)) if matches else None
                    )
                # CPS serves the default space only.
                if device is not None and device.space == self.default_space:
                    found.append((ident, device))
            return found, kind

        @route("POST", r"^/msa/v1/cps/device/application$", "CPS")
        def cps_apps(req, match):
            self._rate_limit()
            found, _kind = identified(req)
            apps = self.fleet.apps
            return json_response(
                [
                    {
                        "identifier": ident,
                        "applications": [
                            {
                                "identifier": apps[i].identifier,
                                "name": apps[i].name,
                                "version": apps[i].version,
                                "shortVersion": apps[i].version,
                                "managed": apps[i].managed,
                                "source": "MDM" if apps[i].managed else "USER",
                            }
                            for i in device.apps
                        ],
                    }
                    for ident, device in found
                ]
            )

        @route("POST", r"^/msa/v1/cps/device/profile$", "CPS")
        def cps_profiles(req, match):
            found, _kind = identified(req)
            catalogue = self.fleet.profiles
            return json_response(
                [
                    {
                        "deviceMdmId": ident,
                        "profiles": [catalogue[i].to_api() for i in device.profiles],
                    }
                    for ident, device in found
                    if device.platform == "IOS"
                ]
            )
