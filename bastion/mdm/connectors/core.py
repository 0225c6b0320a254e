"""MobileIron Core (Ivanti EPMM) over its v2 API; the calls are in docs/mobileiron-api.md."""

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from bastion.mdm.connectors import parsing
from bastion.mdm.connectors.base import (
    ActionRejected,
    ActionSpec,
    AppRecord,
    CheckResult,
    DevicePage,
    DeviceRecord,
    Forbidden,
    InvalidAnswer,
    MdmGroup,
    NotFound,
    ProfileRecord,
    SkippedRecord,
    Space,
)
from bastion.mdm.connectors.common import (
    SAFE_ID,
    Checks,
    MobileIronConnector,
    PageGuard,
    StopChecks,
    batches,
    page_ids,
    refusal_as_rejection,
)
from bastion.mdm.connectors.http import clean_message, message_in
from bastion.mdm.connectors.parsing import EMAIL_MAX, ID_MAX, NAME_MAX, SHORT_MAX, Reject

log = logging.getLogger(__name__)

PAGE_SIZE = 200
APPS_BATCH = 25
PROFILES_BATCH = 50
ALL_DEVICES_LABEL = "-1"
# The Core release the integration guide names as the minimum for MobileIron Threat Defense.
MIN_VERSION = (9, 6, 0, 1)

FIELDS = (
    "common.uuid",
    "common.id",
    "common.status",
    "common.platform",
    "common.platform_name",
    "common.os_version",
    "common.model",
    "common.manufacturer",
    "common.SerialNumber",
    "ios.iPhone UDID",
    "common.last_connected_at",
    "common.registration_date",
    "user.user_id",
    "user.email_address",
    "user.display_name",
    "user.first_name",
    "user.last_name",
)

# Role names as the Core admin portal shows them, so an administrator can find them.
ROLE_API = "API (Access V1 API)"
ROLE_LABEL = "View label"
ROLE_DEVICE = "View device"
ROLE_APPS = "View apps in device details"
ROLE_APPLY = "Apply and remove device label"
ROLE_CPS = "Common Platform Services (CPS)"

# How Core says that the label (or device) named in a call does not exist.
_MISSING = re.compile(r"not found|does not exist|doesn't exist|no such|unknown label", re.I)


def parse_device(raw: Any) -> DeviceRecord | SkippedRecord:
    """One row of `GET /api/v2/devices`, keyed by the dotted field names we asked for."""
    if not isinstance(raw, Mapping):
        return SkippedRecord(f"record is {parsing.json_type(raw)}, not an object")

    mdm_id = ""
    try:
        mdm_id = parsing.ident(raw, "common.uuid")
        status = parsing.text(raw, "common.status", SHORT_MAX).upper()
        if not status:
            raise Reject("field common.status is missing")
        if status != "ACTIVE":
            raise Reject(f"status {status[:40]}")

        platform_raw = parsing.text(raw, "common.platform", SHORT_MAX)
        platform_name = parsing.text(raw, "common.platform_name", SHORT_MAX)
        shown = platform_raw or platform_name
        if not shown:
            raise Reject("field common.platform is missing")
        platform = parsing.platform(platform_raw) or parsing.platform(platform_name)
        if platform is None:
            raise parsing.unsupported(shown)

        return DeviceRecord(
            mdm_id=mdm_id,
            platform=platform,
            os_version=parsing.text(raw, "common.os_version", SHORT_MAX),
            model=parsing.text(raw, "common.model", SHORT_MAX),
            manufacturer=parsing.text(raw, "common.manufacturer", SHORT_MAX),
            guid=mdm_id,
            serial=parsing.text(raw, "common.SerialNumber", ID_MAX),
            udid=parsing.text(raw, "ios.iPhone UDID", ID_MAX),
            last_checkin=parsing.timestamp(raw.get("common.last_connected_at")),
            user=parsing.user(
                parsing.text(raw, "user.user_id", EMAIL_MAX),
                parsing.email(raw, "user.email_address"),
                parsing.text(raw, "user.first_name", NAME_MAX),
                parsing.text(raw, "user.last_name", NAME_MAX),
                parsing.text(raw, "user.display_name", NAME_MAX),
            ),
        )
    except Reject as reason:
        return SkippedRecord(str(reason), mdm_id=mdm_id)


def parse_label(raw: Any) -> MdmGroup | None:
    """One row of label_summary; None when it is unusable (logged by the caller)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        label_id = parsing.ident(raw, "id")
        # Kept exactly as Core spells it: apply and remove send it back in the path.
        name = parsing.text(raw, "name", NAME_MAX, strip=False)
    except Reject:
        return None
    if not name:
        return None

    is_static = raw.get("isStatic") is True
    row_type = raw.get("rowType")
    if label_id == ALL_DEVICES_LABEL or (
        isinstance(row_type, str) and row_type.upper() == "SYSTEM"
    ):
        blocker = "system label"
    elif not is_static:
        blocker = "dynamic label (criteria)"
    else:
        blocker = ""
    return MdmGroup(
        id=label_id,
        name=name,
        device_count=parsing.count(raw.get("deviceCount")),
        target_blocker=blocker,
        is_static=is_static,
    )


def parse_version(text: str) -> tuple[int, ...] | None:
    """(11, 8, 0, 0) from "VSP 11.8.0.0 Build 12 "; None when there is no version in it."""
    found = re.search(r"(\d+(?:\.\d+){1,3})", text or "")
    if not found:
        return None
    numbers = tuple(int(part) for part in found.group(1).split("."))
    return numbers + (0,) * (4 - len(numbers))


def envelope(data: Any, what: str) -> tuple[list, int | None, bool]:
    """(results, totalCount, hasMore) of a v2 list answer."""
    if not isinstance(data, Mapping):
        raise InvalidAnswer(f"{what}: the MDM's answer is not an object")
    results = parsing.as_list(data.get("results"), f"{what}: results")
    return results, parsing.count(data.get("totalCount")), data.get("hasMore") is True


class CoreConnector(MobileIronConnector):
    kind = "core"

    def list_spaces(self) -> list[Space]:
        data = self.http.request("GET", "/api/v2/device_spaces/mine", role=ROLE_API)
        results, _, more = envelope(data, "device spaces")
        if more:
            log.warning("device_spaces/mine has more than one page; only the first is used")

        spaces = []
        for raw in results:
            if not isinstance(raw, Mapping):
                continue
            try:
                space_id = parsing.ident(raw, "id")
                name = parsing.text(raw, "name", NAME_MAX) or f"space {space_id}"
            except Reject as reason:
                log.warning("device space skipped: %s", reason)
                continue
            # Core's Global space is 1, and the guide supports only that one.
            spaces.append(Space(space_id, name, is_default=space_id == "1"))
        return spaces

    def list_groups(self, space: str) -> list[MdmGroup]:
        labels = []
        for raw in self._pages(
            "/api/v2/labels/label_summary",
            {"adminDeviceSpaceId": space},
            what=f"labels of space {space}",
            key="id",
            role=ROLE_LABEL,
        ):
            label = parse_label(raw)
            if label is None:
                log.warning("label skipped in space %s: unusable id or name", space)
                continue
            labels.append(label)
        return labels

    def iter_devices(self, space: str, groups: list[str]) -> Iterator[DevicePage]:
        seen: dict[str, list[str]] = {}
        for label in groups:
            for results, total in self._page_lists(
                "/api/v2/devices",
                {
                    "adminDeviceSpaceId": space,
                    "labelId": label,
                    "query": "",
                    "fields": ",".join(FIELDS),
                },
                what=f"label {label}",
                key="common.uuid",
                role=ROLE_DEVICE,
            ):
                records = []
                for raw in results:
                    record = parse_device(raw)
                    if isinstance(record, DeviceRecord):
                        found_in = seen.setdefault(record.mdm_id, [])
                        if label not in found_in:
                            found_in.append(label)
                        record.groups = list(found_in)
                    records.append(record)
                yield DevicePage(records, total=total, key=str(label))

    def fetch_apps(self, space: str, devices: list[DeviceRecord]) -> dict[str, list[AppRecord]]:
        # The uuids are joined with commas: one holding a comma would ask for other devices.
        wanted = {d.mdm_id.lower(): d.mdm_id for d in devices if SAFE_ID.match(d.mdm_id)}
        found: dict[str, list[AppRecord]] = {}
        for batch in batches(sorted(wanted.values()), APPS_BATCH):
            data = self.http.request(
                "GET",
                "/api/v2/devices/appinventory",
                params={"adminDeviceSpaceId": space, "deviceUuids": ",".join(batch)},
                role=ROLE_APPS,
            )
            results, _, _ = envelope(data, "app inventory")
            for entry in results:
                if not isinstance(entry, Mapping):
                    continue
                uuid = entry.get("deviceUuid")
                mdm_id = wanted.get(uuid.lower()) if isinstance(uuid, str) else None
                if mdm_id is None:
                    continue
                items = entry.get("appInventory")
                apps = [parsing.app(item) for item in items] if isinstance(items, list) else []
                found.setdefault(mdm_id, []).extend(app for app in apps if app is not None)
        return found

    def fetch_profiles(
        self, space: str, devices: list[DeviceRecord]
    ) -> dict[str, list[ProfileRecord]]:
        # CPS knows iOS devices by their UDID, which Core calls "ios.iPhone UDID".
        by_udid = {
            device.udid.lower(): device.mdm_id
            for device in devices
            if device.platform == "ios" and device.udid
        }
        return self._cps_profiles(by_udid, "MDM_IDENTIFIER", PROFILES_BATCH, ROLE_CPS)

    def find_device(self, space: str, identifier: str, kind: str) -> DeviceRecord | None:
        if not isinstance(identifier, str) or not SAFE_ID.match(identifier):
            return None
        if kind in ("mdm_id", "uuid"):
            query = f'common.uuid="{identifier}"'
        elif kind == "udid":
            query = f'"ios.iPhone UDID"="{identifier}"'
        else:
            raise ValueError(f"unknown identifier kind {kind!r}")

        data = self.http.request(
            "GET",
            "/api/v2/devices",
            params={"adminDeviceSpaceId": space, "fields": ",".join(FIELDS), "query": query},
            role=ROLE_DEVICE,
        )
        results, _, _ = envelope(data, "device lookup")
        # A serial or UDID can match old retired rows too; only the active one counts.
        records = [parse_device(raw) for raw in results]
        device = next((r for r in records if isinstance(r, DeviceRecord)), None)
        if device is None:
            return None

        device.groups = self._labels_of(space, device.mdm_id)
        return device

    def _labels_of(self, space: str, uuid: str) -> list[str]:
        """Every label the device is in; the caller keeps those it syncs."""
        data = self.http.request(
            "GET",
            "/api/v2/devices/{uuid}/labels",
            path={"uuid": uuid},
            params={"adminDeviceSpaceId": space},
            role=ROLE_DEVICE,
        )
        results, _, _ = envelope(data, "labels of a device")
        labels = []
        for raw in results:
            if isinstance(raw, Mapping):
                try:
                    labels.append(parsing.ident(raw, "id"))
                except Reject:
                    continue
        return labels

    def apply_action(self, space: str, action: ActionSpec, mdm_id: str) -> None:
        with refusal_as_rejection("label add"):
            self._label_call(space, action, mdm_id, "add")

    def undo_action(self, space: str, action: ActionSpec, mdm_id: str) -> None:
        with refusal_as_rejection("label remove"):
            self._label_call(space, action, mdm_id, "remove")

    def _label_call(self, space: str, action: ActionSpec, mdm_id: str, verb: str) -> None:
        if action.kind != "label":
            raise ActionRejected(f"MobileIron Core has no {action.kind!r} action, only labels")
        name = action.name
        if not name.strip() or len(name) > NAME_MAX or parsing.NOT_TEXT.search(name):
            raise ActionRejected("the label name is empty, too long or not valid text")

        data = self.http.request(
            "PUT",
            "/api/v2/devices/labels/{name}/" + verb,
            path={"name": name},
            params={"adminDeviceSpaceId": space},
            json_body={"deviceUuids": [mdm_id]},
            role=ROLE_APPLY,
        )
        if not isinstance(data, Mapping):
            raise InvalidAnswer(f"label {verb}: the MDM's answer is not an object")

        failure = _record_failure(data, mdm_id)
        if data.get("successful") is True and failure is None:
            log.info("label %s done device=%s", verb, mdm_id)
            return

        message = failure or message_in(data) or "the MDM did not confirm the change"
        if _MISSING.search(message):
            raise NotFound(f"label {verb}: {message}")
        raise ActionRejected(f"label {verb}: {message}")

    def _run_checks(self, checks: Checks) -> None:
        ping = checks.run("connect and sign in", self._ping, role=ROLE_API)
        if ping is None:
            # Every Core call needs the API role: the other checks would only repeat it.
            raise StopChecks
        checks.version = ping
        self._check_version(ping, checks)

        spaces = checks.run("list device spaces", self.list_spaces, role=ROLE_API)
        space = next((s.id for s in spaces or [] if s.is_default), None)
        space = space or (spaces[0].id if spaces else "1")

        checks.run("list labels", lambda: self._first_page_labels(space), role=ROLE_LABEL)
        device = checks.run("list devices", lambda: self._first_device(space), role=ROLE_DEVICE)
        self._check_inventories(space, device, checks)

    def _note_unchecked(self, checks: Checks) -> None:
        checks.note(
            "apply and remove labels", "not checked: would change a device", role=ROLE_APPLY
        )

    def _ping(self) -> str:
        data = self.http.request("GET", "/api/v2/ping", role=ROLE_API)
        results = data.get("results") if isinstance(data, Mapping) else None
        if not isinstance(results, Mapping):
            raise InvalidAnswer("ping: the MDM's answer has no results")
        version = results.get("vspVersion")
        return clean_message(version)[:100] if isinstance(version, str) else ""

    @staticmethod
    def _check_version(version: str, checks: Checks) -> None:
        parsed = parse_version(version)
        wanted = ".".join(str(part) for part in MIN_VERSION)
        if parsed is None:
            checks.warnings.append(
                f"the Core version could not be read; MobileIron Threat Defense needs {wanted} "
                "or later"
            )
        elif parsed < MIN_VERSION:
            checks.warnings.append(
                f"Core {'.'.join(map(str, parsed))} is older than {wanted}, the oldest release "
                "MobileIron Threat Defense supports"
            )

    def _first_page_labels(self, space: str) -> int:
        data = self.http.request(
            "GET",
            "/api/v2/labels/label_summary",
            params={"adminDeviceSpaceId": space, "limit": 1, "offset": 0},
            role=ROLE_LABEL,
        )
        envelope(data, "labels")

    def _first_device(self, space: str) -> DeviceRecord | None:
        data = self.http.request(
            "GET",
            "/api/v2/devices",
            params={
                "adminDeviceSpaceId": space,
                "labelId": ALL_DEVICES_LABEL,
                "query": "",
                "fields": ",".join(FIELDS),
                "limit": 1,
                "offset": 0,
            },
            role=ROLE_DEVICE,
        )
        results, _, _ = envelope(data, "devices")
        records = [parse_device(raw) for raw in results]
        return next((r for r in records if isinstance(r, DeviceRecord)), None)

    def _check_inventories(self, space: str, device: DeviceRecord | None, checks: Checks) -> None:
        if device is None:
            checks.note("read app inventory", "not checked: no active device to ask about")
            checks.note("read iOS profiles", "not checked: no active device to ask about")
            return

        checks.run("read app inventory", lambda: self.fetch_apps(space, [device]), role=ROLE_APPS)
        if device.platform != "ios" or not device.udid:
            checks.note("read iOS profiles", "not checked: no iOS device to ask about")
            return

        available = checks.run(
            "read iOS profiles", lambda: self._profiles_state(space, device), role=ROLE_CPS
        )
        # Profiles are worth having, not worth refusing the connection for: the sync goes
        # on without them, so a missing CPS or CPS role is a warning.
        if available == "absent":
            checks.results[-1] = CheckResult(
                "read iOS profiles",
                None,
                "this Core has no Common Platform Services (CPS): iOS profiles won't be read",
            )
        elif available == "forbidden":
            checks.results[-1] = CheckResult(
                "read iOS profiles",
                None,
                "the account lacks the CPS role: iOS profiles won't be read",
                role=ROLE_CPS,
            )
            checks.warnings.append(
                f"iOS profiles won't be read until the account has the role {ROLE_CPS}"
            )

    def _profiles_state(self, space: str, device: DeviceRecord) -> str:
        try:
            self.fetch_profiles(space, [device])
        except NotFound:
            return "absent"
        except Forbidden:
            return "forbidden"
        return "available"

    def _pages(self, template, params, *, what, key, role) -> Iterator[Any]:
        for results, _ in self._page_lists(template, params, what=what, key=key, role=role):
            yield from results

    def _page_lists(
        self, template, params, *, what, key, role
    ) -> Iterator[tuple[list, int | None]]:
        """Pages of a v2 list with offset paging, checked for loops and early ends."""
        guard = PageGuard(what)
        offset = 0
        while True:
            data = self.http.request(
                "GET",
                template,
                params={**params, "limit": PAGE_SIZE, "offset": offset},
                role=role,
            )
            results, total, more = envelope(data, what)
            guard.check(page_ids(results, key), offset, more=more)
            yield results, total

            if not more:
                return
            offset += len(results)
            if total is not None and offset >= total:
                raise InvalidAnswer(
                    f"{what}: the MDM says more records follow offset {offset}, "
                    f"but its totalCount is {total}"
                )


def _record_failure(data: Mapping, mdm_id: str) -> str | None:
    """The per-device failure message of a label answer, when the device has one."""
    results = data.get("results")
    records = results.get("records") if isinstance(results, Mapping) else None
    if not isinstance(records, list):
        return None
    for record in records:
        device = record.get("device") if isinstance(record, Mapping) else None
        if not isinstance(device, Mapping) or device.get("uuid") not in (mdm_id, None):
            continue
        if device.get("failureCode") not in (None, ""):
            message = device.get("message")
            code = device.get("failureCode")
            text = message if isinstance(message, str) and message else str(code)
            return clean_message(text)
    return None
