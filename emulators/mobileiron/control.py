"""The /_emulator control API: faults, request log, state inspection and fleet mutations.

It sits outside MDM authentication and speaks plain JSON; see README.md for every endpoint.
"""

from __future__ import annotations

import json
import re
import time
import uuid as uuid_module
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from .common import Response, dumps
from .core import parse_query
from .faults import parse_faults
from .fleet import CoreLabel

if TYPE_CHECKING:
    from .cloud import CloudApp
    from .core import CoreApp
    from .server import Emulator


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _ok(body: Any, status: int = 200) -> Response:
    return Response(status, dumps(body))


class Control:
    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.routes: list[tuple[str, re.Pattern, Any]] = []
        add = self._add
        add("GET", r"/health", self.health)
        add("GET", r"/faults", self.get_faults)
        add("POST", r"/faults", self.set_faults)
        add("DELETE", r"/faults", self.clear_faults)
        add("GET", r"/requests", self.requests)
        add("POST", r"/reset-log", self.reset_log)
        add("POST", r"/config", self.config)
        add("GET", r"/state/core/devices/(?P<key>[^/]+)", self.core_device_state)
        add("GET", r"/state/core/labels/(?P<key>-?\d+)", self.core_label_state)
        add("GET", r"/state/cloud/devices/(?P<key>[^/]+)", self.cloud_device_state)
        add("GET", r"/state/cloud/groups/(?P<key>\d+)", self.cloud_group_state)
        add("POST", r"/fleet/core/labels", self.core_label_create)
        add("POST", r"/fleet/core/labels/(?P<key>-?\d+)/members", self.core_label_members)
        add("POST", r"/fleet/core/labels/(?P<key>-?\d+)/rename", self.core_label_rename)
        add("POST", r"/fleet/core/labels/(?P<key>-?\d+)/delete", self.core_label_delete)
        add("POST", r"/fleet/core/devices/(?P<key>[^/]+)", self.core_device_patch)
        add("POST", r"/fleet/core/devices/(?P<key>[^/]+)/reenrol", self.core_device_reenrol)
        add("POST", r"/fleet/cloud/groups/(?P<key>\d+)/members", self.cloud_group_members)
        add("POST", r"/fleet/cloud/groups/(?P<key>\d+)/rename", self.cloud_group_rename)
        add("POST", r"/fleet/cloud/groups/(?P<key>\d+)/delete", self.cloud_group_delete)
        add("POST", r"/fleet/cloud/devices/(?P<key>[^/]+)", self.cloud_device_patch)
        add("POST", r"/fleet/cloud/devices/(?P<key>[^/]+)/reenrol", self.cloud_device_reenrol)

    def _add(self, method: str, pattern: str, handler) -> None:
        self.routes.append((method, re.compile(f"^/_emulator{pattern}$"), handler))

    def handle(self, method: str, raw_path: str, raw_query: str, body: bytes) -> Response:
        query = parse_qs(raw_query)
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return _ok({"error": "body is not valid JSON"}, 400)
        known_path = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(raw_path)
            if match is None:
                continue
            known_path = True
            if route_method != method:
                continue
            try:
                return handler(match, query, data)
            except ControlError as err:
                return _ok({"error": err.message}, err.status)
            except (ValueError, TypeError, KeyError) as err:
                return _ok({"error": str(err)}, 400)
        if known_path:
            return _ok({"error": f"method {method} not allowed"}, 405)
        return _ok({"error": f"unknown control endpoint {raw_path}"}, 404)

    # -- general -----------------------------------------------------------------------------

    def health(self, match, query, data):
        emulator = self.emulator
        counts = {}
        for name, app in emulator.apps.items():
            counts[name] = len(app.devices)
        return _ok(
            {
                "ok": True,
                "products": emulator.prefixes,
                "devices": counts,
                "replay": str(emulator.replay.folder) if emulator.replay else None,
            }
        )

    def get_faults(self, match, query, data):
        return _ok({"faults": self.emulator.faults.snapshot()})

    def set_faults(self, match, query, data):
        rules = parse_faults(data)
        if query.get("append", ["0"])[0] in ("1", "true"):
            self.emulator.faults.add(rules)
        else:
            self.emulator.faults.set(rules)
        return _ok({"faults": self.emulator.faults.snapshot()})

    def clear_faults(self, match, query, data):
        self.emulator.faults.clear()
        return _ok({"faults": []})

    def requests(self, match, query, data):
        limit = query.get("limit", [None])[0]
        product = query.get("product", [None])[0]
        return _ok(self.emulator.log.snapshot(int(limit) if limit else None, product))

    def reset_log(self, match, query, data):
        self.emulator.log.reset()
        return _ok({"count": 0})

    def config(self, match, query, data):
        cloud = self._cloud()
        if "appInventoryPerMinute" in data:
            with cloud.lock:
                cloud.app_inventory_per_minute = int(data["appInventoryPerMinute"] or 0)
                cloud._app_calls.clear()
        return _ok({"appInventoryPerMinute": cloud.app_inventory_per_minute})

    # -- Core --------------------------------------------------------------------------------

    def _core(self) -> CoreApp:
        app = self.emulator.apps.get("core")
        if app is None:
            raise ControlError(404, "no stateful Core is running")
        return app

    def _core_device(self, app: CoreApp, key: str):
        key = unquote(key)
        device = app.by_uuid.first(key)
        if device is None and key.isdigit():
            device = app.by_id.get(int(key))
        if device is None:
            raise ControlError(404, f"Core device {key} not found")
        return device

    def _core_label(self, app: CoreApp, key: str) -> CoreLabel:
        label = app.labels.get(int(key))
        if label is None:
            raise ControlError(404, f"Core label {key} not found")
        return label

    def _core_device_view(self, app: CoreApp, device) -> dict[str, Any]:
        return {
            "id": device.id,
            "uuid": device.uuid,
            "status": device.status,
            "platform": device.platform,
            "osVersion": device.os_version,
            "model": device.model,
            "serialNumber": device.serial,
            "udid": device.udid,
            "space": device.space,
            "user": device.user.email,
            "labels": [
                {"id": lb.id, "name": lb.name, "static": lb.static}
                for lb in app.labels_of(device, 1)
            ],
        }

    def core_device_state(self, match, query, data):
        app = self._core()
        with app.lock:
            device = self._core_device(app, match["key"])
            return _ok(self._core_device_view(app, device))

    def core_label_state(self, match, query, data):
        app = self._core()
        with app.lock:
            label = self._core_label(app, match["key"])
            members = app.candidates(1, label, ())
            return _ok(
                {
                    "id": label.id,
                    "name": label.name,
                    "static": label.static,
                    "criteria": label.criteria,
                    "space": label.space,
                    "deviceCount": len(members),
                    "members": [d.id for d in members],
                    "uuids": [d.uuid for d in members],
                }
            )

    def core_label_create(self, match, query, data):
        app = self._core()
        with app.lock:
            name = data["name"]
            if any(lb.name == name for lb in app.labels.values()):
                raise ControlError(409, f"label {name!r} already exists")
            label_id = int(data.get("id") or max(app.labels, default=0) + 1)
            if label_id in app.labels:
                raise ControlError(409, f"label id {label_id} already exists")
            label = CoreLabel(
                label_id,
                name,
                data.get("description", ""),
                bool(data.get("static", True)),
                data.get("criteria", ""),
                False,
                int(data.get("space", 1)),
            )
            if not label.static:
                app.criteria[label.id] = parse_query(label.criteria)
                label.members = {d.id for d in app.devices if app._matches(d, label.id)}
            app.labels[label.id] = label
            app.core.labels.append(label)
            app.touch_label(label.id)
            return _ok({"id": label.id, "name": label.name}, 201)

    def core_label_members(self, match, query, data):
        app = self._core()
        with app.lock:
            label = self._core_label(app, match["key"])
            for key in data.get("add", []):
                label.members.add(self._core_device(app, key).id)
            for key in data.get("remove", []):
                label.members.discard(self._core_device(app, key).id)
            app.touch_label(label.id)
            return _ok({"id": label.id, "deviceCount": len(label.members)})

    def core_label_rename(self, match, query, data):
        app = self._core()
        with app.lock:
            label = self._core_label(app, match["key"])
            name = data["name"]
            if any(lb.name == name and lb is not label for lb in app.labels.values()):
                raise ControlError(409, f"label {name!r} already exists")
            label.name = name
            app.touch_label(label.id)
            return _ok({"id": label.id, "name": label.name})

    def core_label_delete(self, match, query, data):
        app = self._core()
        with app.lock:
            label = self._core_label(app, match["key"])
            del app.labels[label.id]
            app.criteria.pop(label.id, None)
            app.core.labels.remove(label)
            app.touch_label(label.id)
            return _ok({"deleted": label.id})

    _CORE_PATCH = {
        "status": "status",
        "osVersion": "os_version",
        "model": "model",
        "owner": "owner",
        "compliant": "compliant",
        "quarantined": "quarantined",
        "space": "space",
        "lastConnectedAt": "last_seen",
        "manufacturer": "manufacturer",
    }

    def core_device_patch(self, match, query, data):
        app = self._core()
        with app.lock:
            device = self._core_device(app, match["key"])
            for key, value in data.items():
                if key not in self._CORE_PATCH:
                    raise ControlError(
                        400, f"cannot change {key!r}; allowed: {', '.join(self._CORE_PATCH)}"
                    )
                setattr(device, self._CORE_PATCH[key], value)
            app.refresh_device(device)
            return _ok(self._core_device_view(app, device))

    def core_device_reenrol(self, match, query, data):
        """The same handset enrols again: new uuid and id, same serial, UDID and user."""
        app = self._core()
        with app.lock:
            old = self._core_device(app, match["key"])
            new = old.copy()
            new.id = app.next_device_id
            app.next_device_id += 1
            new.uuid = data.get("uuid") or str(uuid_module.uuid4())
            new.status = "ACTIVE"
            now = int(time.time() * 1000)
            new.registered = now
            new.last_seen = now
            old.status = data.get("oldStatus", "RETIRED")
            app.refresh_device(old)
            app.add_device(new)
            return _ok(self._core_device_view(app, new), 201)

    # -- Cloud -------------------------------------------------------------------------------

    def _cloud(self) -> CloudApp:
        app = self.emulator.apps.get("cloud")
        if app is None:
            raise ControlError(404, "no stateful Cloud is running")
        return app

    def _cloud_device(self, app: CloudApp, key: str):
        device = app.device(key)
        if device is None:
            raise ControlError(404, f"Cloud device {key} not found")
        return device

    def _cloud_group(self, app: CloudApp, key: str):
        group = app.groups.get(int(key))
        if group is None:
            raise ControlError(404, f"Cloud group {key} not found")
        return group

    def _cloud_device_view(self, app: CloudApp, device) -> dict[str, Any]:
        lock = app.locks.get(device.id)
        return {
            "id": device.id,
            "guid": device.guid,
            "registrationState": device.state,
            "platformType": device.platform,
            "platformVersion": device.os_version,
            "serialNumber": device.serial,
            "udid": device.udid,
            "space": device.space,
            "user": device.user.email,
            "groups": [{"id": g.id, "name": g.name} for g in app.groups_of(device)],
            "attrs": {k: list(v) for k, v in (device.attrs or {}).items()},
            "locked": bool(lock and lock.get("locked")),
            "lock": dict(lock) if lock else None,
        }

    def cloud_device_state(self, match, query, data):
        app = self._cloud()
        with app.lock:
            return _ok(self._cloud_device_view(app, self._cloud_device(app, match["key"])))

    def cloud_group_state(self, match, query, data):
        app = self._cloud()
        with app.lock:
            group = self._cloud_group(app, match["key"])
            members = sorted(app.group_members[group.id])
            return _ok(
                {
                    "id": group.id,
                    "name": group.name,
                    "definition": group.definition,
                    "space": group.space,
                    "memberCount": len(members),
                    "members": members,
                    "guids": [app.by_id[i].guid for i in members],
                }
            )

    def cloud_group_members(self, match, query, data):
        app = self._cloud()
        with app.lock:
            group = self._cloud_group(app, match["key"])
            excluded = app.group_excluded[group.id]
            changed = []
            for key in data.get("add", []):
                device = self._cloud_device(app, str(key))
                excluded.discard(device.id)
                group.static_members.add(device.id)
                changed.append(device)
            for key in data.get("remove", []):
                device = self._cloud_device(app, str(key))
                group.static_members.discard(device.id)
                excluded.add(device.id)
                changed.append(device)
            for device in changed:
                app.refresh_device(device)
            return _ok({"id": group.id, "memberCount": len(app.group_members[group.id])})

    def cloud_group_rename(self, match, query, data):
        app = self._cloud()
        with app.lock:
            group = self._cloud_group(app, match["key"])
            group.name = data["name"]
            return _ok({"id": group.id, "name": group.name})

    def cloud_group_delete(self, match, query, data):
        app = self._cloud()
        with app.lock:
            group = self._cloud_group(app, match["key"])
            del app.groups[group.id]
            app.cloud.groups.remove(group)
            app.group_members.pop(group.id, None)
            app.touch_group(group.id)
            return _ok({"deleted": group.id})

    _CLOUD_PATCH = {
        "registrationState": "state",
        "platformVersion": "os_version",
        "osBuildVersion": "os_build",
        "ownershipType": "ownership",
        "complianceState": "compliant",
        "jailbroken": "jailbroken",
        "quarantined": "quarantined",
        "lastCheckin": "last_checkin",
        "deviceModel": "model",
        "prettyModel": "pretty_model",
    }

    def cloud_device_patch(self, match, query, data):
        app = self._cloud()
        with app.lock:
            device = self._cloud_device(app, match["key"])
            for key, value in data.items():
                if key == "attrs":
                    device.attrs = {k: list(v) for k, v in (value or {}).items()} or None
                    continue
                if key not in self._CLOUD_PATCH:
                    raise ControlError(
                        400,
                        f"cannot change {key!r}; allowed: attrs, {', '.join(self._CLOUD_PATCH)}",
                    )
                setattr(device, self._CLOUD_PATCH[key], value)
            app.refresh_device(device)
            return _ok(self._cloud_device_view(app, device))

    def cloud_device_reenrol(self, match, query, data):
        """The same handset enrols again: new id and guid, same serial, UDID and user."""
        app = self._cloud()
        with app.lock:
            old = self._cloud_device(app, match["key"])
            new = old.copy()
            new.id = app.next_device_id
            app.next_device_id += 1
            new.guid = data.get("guid") or str(uuid_module.uuid4())
            new.state = "ACTIVE"
            new.attrs = None
            now = int(time.time() * 1000)
            new.registered = now
            new.last_checkin = now
            old.state = data.get("oldState", "RETIRED")
            app.refresh_device(old)
            app.add_device(new)
            return _ok(self._cloud_device_view(app, new), 201)
