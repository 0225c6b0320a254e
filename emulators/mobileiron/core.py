"""MobileIron Core (Ivanti EPMM) v2 API emulator, as described in docs/mobileiron-api.md."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from . import catalog
from .common import HttpError, KeyIndex, ProductApp, Request, Response, json_response, page_slice
from .fleet import CORE_GLOBAL_SPACE, CoreDevice, CoreLabel, Fleet

DEVICES_MAX_LIMIT = 500
LABELS_MAX_LIMIT = 200
APPINVENTORY_MAX_UUIDS = 25
CPS_MAX_IDENTIFIERS = 50
OBFUSCATED = "*****"


def _iso(ms: int) -> str:
    if not ms:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _security_patch(d: CoreDevice) -> str:
    if d.platform != "Android":
        return ""
    return catalog.ANDROID_BUILDS.get(d.os_version.split(".")[0], ("", ""))[1]


def _device_name(d: CoreDevice) -> str:
    return f"{d.user.first_name}'s {d.model}" if d.user.first_name else d.model


# Device search fields: lower-cased name -> value getter. Names are matched case-insensitively
# (clients disagree on case) and echoed back exactly as requested.
FIELDS: dict[str, Callable[[CoreDevice, Any], Any]] = {
    "common.uuid": lambda d, s: d.uuid,
    "common.id": lambda d, s: d.id,
    "common.status": lambda d, s: d.status,
    "common.platform": lambda d, s: d.platform,
    "common.platform_name": lambda d, s: f"{d.platform} {d.os_version}",
    "common.os_version": lambda d, s: d.os_version,
    "common.model": lambda d, s: d.model,
    "common.manufacturer": lambda d, s: d.manufacturer,
    "common.serialnumber": lambda d, s: d.serial,
    "ios.iphone udid": lambda d, s: d.udid,
    "common.imei": lambda d, s: d.imei,
    "common.imsi": lambda d, s: "",
    "common.wifi_mac_address": lambda d, s: d.wifi_mac,
    "common.last_connected_at": lambda d, s: _iso(d.last_seen),
    "common.miclient_last_connected_at": lambda d, s: _iso(d.last_seen),
    "common.registration_date": lambda d, s: _iso(d.registered),
    "common.creation_date": lambda d, s: _iso(d.registered),
    "common.owner": lambda d, s: d.owner,
    "common.compliant": lambda d, s: d.compliant,
    "common.quarantined": lambda d, s: d.quarantined,
    "common.security_state": lambda d, s: "Ok",
    "common.device_is_compromised": lambda d, s: False,
    "common.mdm_managed": lambda d, s: d.status == "ACTIVE",
    "common.device_space_name": lambda d, s: s.space_name(d.space),
    "common.current_phone_number": lambda d, s: "",
    "common.client_version": lambda d, s: "12.11.0" if d.platform == "iOS" else "12.6.0.0",
    "ios.devicename": lambda d, s: _device_name(d) if d.platform == "iOS" else "",
    "android.security_patch": lambda d, s: _security_patch(d),
    "user.user_id": lambda d, s: d.user.uid,
    "user.email_address": lambda d, s: d.user.email,
    "user.display_name": lambda d, s: d.user.display_name,
    "user.first_name": lambda d, s: d.user.first_name,
    "user.last_name": lambda d, s: d.user.last_name,
}
# What a GDPR profile on the API admin hides.
GDPR_FIELDS = frozenset(
    {
        "user.user_id",
        "user.email_address",
        "user.display_name",
        "user.first_name",
        "user.last_name",
        "common.imei",
        "common.serialnumber",
        "common.imsi",
        "common.current_phone_number",
        "common.wifi_mac_address",
    }
)
# Query fields answered from an index instead of a scan.
INDEXED = ("common.uuid", "common.serialnumber", "ios.iphone udid", "common.id")

_QUERY_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(!=|=)|([^\s"=!]+))')


def parse_query(text: str) -> tuple[tuple[str, str, str], ...]:
    """`field = "value" AND ...` into (field, op, value) terms; names may be quoted."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _QUERY_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise HttpError(400, f"Invalid query near: {text[position : position + 20]}")
        position = match.end()
        quoted, op, word = match.groups()
        if quoted is not None:
            tokens.append(("str", quoted.replace('\\"', '"')))
        elif op is not None:
            tokens.append(("op", op))
        elif word is not None:
            tokens.append(("word", word))

    terms = []
    i = 0
    while i < len(tokens):
        if len(tokens) - i < 3 or tokens[i + 1][0] != "op" or tokens[i][0] == "op":
            raise HttpError(400, "Invalid query: expected <field> = <value> [AND ...]")
        name = tokens[i][1].lower()
        if name not in FIELDS:
            raise HttpError(400, f"Invalid query: unknown field '{tokens[i][1]}'")
        if tokens[i + 2][0] == "op":
            raise HttpError(400, "Invalid query: missing value")
        terms.append((name, tokens[i + 1][1], tokens[i + 2][1]))
        i += 3
        if i < len(tokens):
            if tokens[i][0] != "word" or tokens[i][1].upper() != "AND":
                raise HttpError(400, "Invalid query: only AND is supported")
            i += 1
            if i == len(tokens):
                raise HttpError(400, "Invalid query: dangling AND")
    return tuple(terms)


def render_error(err: HttpError) -> Response:
    """Core's v2 message body."""
    if err.body is not None:
        return json_response(err.body, err.status, err.headers)
    body = {
        "messages": [
            {
                "type": "Error",
                "messageKey": f"com.mobileiron.vsp.messages.http.{err.status}",
                "localizedMessage": err.message,
            }
        ]
    }
    return json_response(body, err.status, err.headers)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


class CoreApp(ProductApp):
    name = "core"

    def __init__(self, fleet: Fleet):
        core = fleet.core
        super().__init__(core.accounts)
        self.fleet = fleet
        self.core = core
        self.spaces = {s.id: s for s in core.spaces}
        core.devices.sort(key=lambda d: d.id)
        self.devices = core.devices
        self.by_id: dict[int, CoreDevice] = {}
        self.by_uuid = KeyIndex()
        self.by_serial = KeyIndex(upper=True)
        self.by_udid = KeyIndex(upper=True)
        for device in self.devices:
            self._index(device)
        self.labels: dict[int, CoreLabel] = {lb.id: lb for lb in core.labels}
        self.criteria: dict[int, tuple] = {}
        # Bumped whenever a label's members change; cached member lists check it.
        self.label_versions: dict[int, int] = {}
        # Bumped whenever a device is added or changed.
        self.data_version = 0
        self._cache: dict[tuple, tuple] = {}
        for label in core.labels:
            if not label.static:
                self.criteria[label.id] = parse_query(label.criteria)
                label.members = {d.id for d in self.devices if self._matches(d, label.id)}
        self.next_device_id = max((d.id for d in self.devices), default=0) + 1
        self._routes()

    # -- state -------------------------------------------------------------------------------

    def _index(self, device: CoreDevice) -> None:
        self.by_id[device.id] = device
        self.by_uuid.add(device.uuid, device)
        if device.serial:
            self.by_serial.add(device.serial, device)
        if device.udid:
            self.by_udid.add(device.udid, device)

    def space_name(self, space_id: int) -> str:
        space = self.spaces.get(space_id)
        return space.name if space else ""

    def _matches(self, d: CoreDevice, label_id: int) -> bool:
        return all(self._term(d, term) for term in self.criteria[label_id])

    def _term(self, d: CoreDevice, term: tuple[str, str, str]) -> bool:
        name, op, value = term
        equal = _text(FIELDS[name](d, self)) == value.lower()
        return equal if op == "=" else not equal

    def touch_label(self, label_id: int) -> None:
        self.label_versions[label_id] = self.label_versions.get(label_id, 0) + 1

    def refresh_device(self, d: CoreDevice) -> None:
        """Re-evaluate dynamic labels after a device changed."""
        self.data_version += 1
        for label_id in self.criteria:
            label = self.labels.get(label_id)
            if label is None:
                continue
            inside = self._matches(d, label_id)
            if inside != (d.id in label.members):
                (label.members.add if inside else label.members.discard)(d.id)
                self.touch_label(label_id)

    def add_device(self, d: CoreDevice) -> None:
        self.devices.append(d)
        self._index(d)
        self.refresh_device(d)

    def labels_of(self, d: CoreDevice, space: int) -> list[CoreLabel]:
        return [
            lb
            for lb in sorted(self.labels.values(), key=lambda lb: lb.id)
            if d.id in lb.members and self._label_visible(lb, space)
        ]

    def _label_visible(self, label: CoreLabel, space: int) -> bool:
        return space == CORE_GLOBAL_SPACE or label.space in (CORE_GLOBAL_SPACE, space)

    def _visible(self, d: CoreDevice, space: int) -> bool:
        return space == CORE_GLOBAL_SPACE or d.space == space

    def candidates(self, space: int, label: CoreLabel | None, terms: tuple) -> list[CoreDevice]:
        """Devices matching a search, in id order; cached until the label or data changes."""
        indexed = next((t for t in terms if t[0] in INDEXED and t[1] == "="), None)
        if indexed is not None:
            return [
                d
                for d in self._lookup(indexed[0], indexed[2])
                if self._visible(d, space)
                and (label is None or d.id in label.members)
                and all(self._term(d, t) for t in terms)
            ]
        key = (label.id if label else None, space, terms)
        version = (self.label_versions.get(label.id, 0) if label else 0, self.data_version)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        if label is None:
            base = self.devices
        elif label.id == -1 and len(label.members) == len(self.devices):
            base = self.devices
        else:
            by_id = self.by_id
            base = [by_id[i] for i in sorted(label.members) if i in by_id]
        if space != CORE_GLOBAL_SPACE:
            base = [d for d in base if d.space == space]
        if terms:
            base = [d for d in base if all(self._term(d, t) for t in terms)]
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (version, base)
        return base

    def _lookup(self, name: str, value: str) -> list[CoreDevice]:
        if name == "common.uuid":
            return self.by_uuid.get(value)
        if name == "common.id":
            found = self.by_id.get(int(value)) if value.isdigit() else None
            return [found] if found else []
        index = self.by_serial if name == "common.serialnumber" else self.by_udid
        return sorted(index.get(value), key=lambda d: d.id)

    # -- helpers -----------------------------------------------------------------------------

    def error(self, err: HttpError) -> Response:
        return render_error(err)

    def _space(self, req: Request) -> int:
        raw = req.param("adminDeviceSpaceId")
        if raw is None or raw == "":
            raise HttpError(400, "Missing required parameter 'adminDeviceSpaceId'")
        try:
            space = int(raw)
        except ValueError:
            raise HttpError(400, "Invalid value for parameter 'adminDeviceSpaceId'") from None
        if space not in self.spaces:
            raise HttpError(400, f"Device space {space} does not exist")
        allowed = req.account.spaces
        if allowed is not None and space not in allowed:
            raise HttpError(403, f"Administrator is not assigned to device space {space}")
        return space

    @staticmethod
    def _envelope(results: list, total: int, offset: int, empty: bool) -> dict[str, Any]:
        return {
            "totalCount": total,
            "resultCount": len(results),
            "hasMore": (empty and total > 0) or offset + len(results) < total,
            "results": results,
        }

    # -- routes ------------------------------------------------------------------------------

    def _routes(self) -> None:
        route = self.route

        @route("GET", r"^/api/v2/ping$", "API")
        def ping(req, match):
            return json_response(
                {"results": {"apiVersion": 2, "vspVersion": self.core.vsp_version}}
            )

        @route("GET", r"^/api/v2/device_spaces/mine$", "API")
        def spaces_mine(req, match):
            allowed = req.account.spaces
            spaces = [
                {"id": s.id, "name": s.name}
                for s in sorted(self.spaces.values(), key=lambda s: s.id)
                if allowed is None or s.id in allowed
            ]
            limit = req.int_param("limit", 10000, low=1, high=10000)
            offset = req.int_param("offset", 0, low=0)
            page, empty = page_slice(req, spaces, offset, limit)
            return json_response(self._envelope(page, len(spaces), offset, empty))

        @route("GET", r"^/api/v2/labels/label_summary$", "API", "VIEW_LABEL")
        def label_summary(req, match):
            space = self._space(req)
            limit = req.int_param("limit", 50, low=1, high=LABELS_MAX_LIMIT)
            offset = req.int_param("offset", 0, low=0)
            labels = [
                lb
                for lb in sorted(self.labels.values(), key=lambda lb: lb.id)
                if self._label_visible(lb, space)
            ]
            page, empty = page_slice(req, labels, offset, limit)
            results = [
                {
                    "id": lb.id,
                    "name": lb.name,
                    "description": lb.description,
                    "isStatic": lb.static,
                    "criteria": lb.criteria,
                    "deviceCount": len(self.candidates(space, lb, ())),
                    "deviceSpaceId": lb.space,
                    "deviceSpaceName": self.space_name(lb.space),
                    "deviceSpacePath": f"/{self.space_name(lb.space)}",
                    "rowType": "SYSTEM" if lb.system else "ADMIN",
                }
                for lb in page
            ]
            return json_response(self._envelope(results, len(labels), offset, empty))

        @route("GET", r"^/api/v2/devices$", "API", "VIEW_DEVICE")
        def devices(req, match):
            started = time.perf_counter()
            space = self._space(req)
            fields_raw = req.param("fields")
            if not fields_raw:
                raise HttpError(400, "Missing required parameter 'fields'")
            names = list(dict.fromkeys(f.strip() for f in fields_raw.split(",") if f.strip()))
            if not names or len(names) > 512:
                raise HttpError(400, "Parameter 'fields' must list 1 to 512 fields")
            limit = req.int_param("limit", 50, low=1, high=DEVICES_MAX_LIMIT)
            offset = req.int_param("offset", 0, low=0)
            label_raw = req.param("labelId")
            query = req.param("query")
            if label_raw in (None, "") and query is None:
                raise HttpError(400, "One of either the query or labelId parameters is required")
            if query is not None and len(query) > 255:
                raise HttpError(400, "Parameter 'query' is longer than 255 characters")
            label = None
            if label_raw not in (None, ""):
                try:
                    label = self.labels.get(int(label_raw))
                except ValueError:
                    label = None
                if label is None or not self._label_visible(label, space):
                    raise HttpError(400, f"Label {label_raw} does not exist")
            terms = parse_query(query or "")
            found = self.candidates(space, label, terms)
            page, empty = page_slice(req, found, offset, limit)
            results = self._records(page, names, req.account.gdpr)
            body = self._envelope(results, len(found), offset, empty)
            now = int(time.time() * 1000)
            body["searchTimeMillis"] = int((time.perf_counter() - started) * 1000)
            body["currentServerTimeMilliseconds"] = now
            return json_response(body)

        @route("GET", r"^/api/v2/devices/appinventory$", "API", "VIEW_DEVICE", "VIEW_APPS")
        def appinventory(req, match):
            space = self._space(req)
            uuids = [
                u.strip() for raw in req.params("deviceUuids") for u in raw.split(",") if u.strip()
            ]
            if not uuids:
                raise HttpError(400, "Missing required parameter 'deviceUuids'")
            if len(uuids) > APPINVENTORY_MAX_UUIDS:
                raise HttpError(400, f"At most {APPINVENTORY_MAX_UUIDS} device uuids per call")
            apps = self.fleet.apps
            results = []
            for uuid in uuids:
                device = self.by_uuid.first(uuid)
                if device is None or not self._visible(device, space):
                    continue
                results.append(
                    {
                        "deviceUuid": device.uuid,
                        "appInventory": [
                            {
                                "name": apps[i].name,
                                "identifier": apps[i].identifier,
                                "version": apps[i].version,
                                "platformType": device.platform,
                            }
                            for i in device.apps
                        ],
                    }
                )
            return json_response({"results": results})

        @route("GET", r"^/api/v2/devices/(?P<uuid>[^/]+)/labels$", "API", "VIEW_DEVICE")
        def device_labels(req, match):
            space = self._space(req)
            device = self.by_uuid.first(unquote(match["uuid"]))
            if device is None or not self._visible(device, space):
                raise HttpError(404, f"Device {unquote(match['uuid'])} not found")
            results = [
                {"id": str(lb.id), "name": lb.name, "staticLabel": lb.static}
                for lb in self.labels_of(device, space)
            ]
            return json_response(self._envelope(results, len(results), 0, False))

        @route(
            "PUT",
            r"^/api/v2/devices/labels/(?P<name>.+)/(?P<action>add|remove)$",
            "API",
            "APPLY_LABEL",
        )
        def apply_label(req, match):
            space = self._space(req)
            name = unquote(match["name"])
            body = req.json()
            uuids = body.get("deviceUuids") if isinstance(body, dict) else None
            if (
                not isinstance(uuids, list)
                or not uuids
                or not all(isinstance(u, str) for u in uuids)
            ):
                raise HttpError(400, 'Body must be {"deviceUuids": ["<uuid>", ...]}')
            return json_response(self.change_label(name, uuids, match["action"] == "add", space))

        @route("POST", r"^/msa/v1/cps/device/profile$", "API", "CPS")
        def profiles(req, match):
            if not self.core.cps:
                raise HttpError(404, "Common Platform Services are not available")
            body = req.json()
            idents = body.get("identifiers") if isinstance(body, dict) else None
            kind = (body or {}).get("identifierType", "MDM_IDENTIFIER")
            if not isinstance(idents, list) or not idents:
                raise HttpError(400, "Body must carry a non-empty 'identifiers' list")
            if len(idents) > CPS_MAX_IDENTIFIERS:
                raise HttpError(400, f"At most {CPS_MAX_IDENTIFIERS} identifiers per call")
            if kind not in ("MDM_IDENTIFIER", "GUID"):
                raise HttpError(400, f"Unsupported identifierType {kind!r}")
            catalogue = self.fleet.profiles
            results = []
            for ident in idents:
                if not isinstance(ident, str):
                    continue
                if kind == "GUID":
                    device = self.by_uuid.first(ident)
                    matches = [device] if device else []
                else:
                    matches = self.by_udid.get(ident)
                # A re-enrolled device keeps its UDID: report the latest enrolment.
                live = [d for d in matches if d.platform == "iOS"]
                if not live:
                    continue
                device = max(live, key=lambda d: (d.status == "ACTIVE", d.id))
                results.append(
                    {
                        "deviceMdmId": ident,
                        "profiles": [catalogue[i].to_api() for i in device.profiles],
                    }
                )
            return json_response(results)

    def _records(self, devices: list[CoreDevice], names: list[str], gdpr: bool) -> list[dict]:
        getters = []
        for name in names:
            key = name.lower()
            getter = FIELDS.get(key)
            hide = gdpr and key in GDPR_FIELDS
            getters.append((name, getter, hide))
        records = []
        for d in devices:
            record = {}
            for name, getter, hide in getters:
                if getter is None:
                    record[name] = ""
                    continue
                value = getter(d, self)
                record[name] = OBFUSCATED if hide and value not in ("", None) else value
            records.append(record)
        return records

    def change_label(self, name: str, uuids: list[str], add: bool, space: int) -> dict:
        label = next((lb for lb in self.labels.values() if lb.name == name), None)
        records = []
        ok = True
        for uuid in uuids:
            failure, message = None, None
            device = self.by_uuid.first(uuid)
            if label is None:
                failure, message = "LABEL_NOT_FOUND", f"Label '{name}' does not exist"
            elif not label.static:
                failure = "LABEL_NOT_STATIC"
                message = f"Label '{name}' is dynamic and cannot be applied or removed"
            elif not self._label_visible(label, space):
                failure, message = "LABEL_NOT_IN_SPACE", f"Label '{name}' is not in this space"
            elif device is None or not self._visible(device, space):
                failure, message = "DEVICE_NOT_FOUND", f"Device {uuid} not found"
            if failure is None:
                if add and device.id not in label.members:
                    label.members.add(device.id)
                    self.touch_label(label.id)
                elif not add and device.id in label.members:
                    label.members.discard(device.id)
                    self.touch_label(label.id)
                message = (
                    "com.mobileiron.vsp.messages.label.apply.successful"
                    if add
                    else "com.mobileiron.vsp.messages.label.remove.successful"
                )
            else:
                ok = False
            records.append(
                {
                    "label": name,
                    "device": {"uuid": uuid, "message": message, "failureCode": failure},
                }
            )
        return {"successful": ok, "results": {"records": records}}
