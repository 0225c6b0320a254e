"""MobileIron Cloud (Ivanti Neurons for MDM) over /api/v1 and the CPS API.

The calls are in docs/mobileiron-api.md. CPS works in the default space only, so the
default space reads groups and their members through CPS, other spaces through /api/v1.
"""

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from bastion.mdm.connectors import parsing
from bastion.mdm.connectors.base import (
    ActionRejected,
    ActionSpec,
    AppRecord,
    DevicePage,
    DeviceRecord,
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
    batches,
    page_ids,
    refusal_as_rejection,
)
from bastion.mdm.connectors.http import message_in
from bastion.mdm.connectors.parsing import EMAIL_MAX, ID_MAX, NAME_MAX, SHORT_MAX, Reject

log = logging.getLogger(__name__)

DEVICE_ROWS = 500
GROUP_ROWS = 50
CPS_LIMIT = 50
APPS_BATCH = 50
LOCK_MESSAGE = "This device was locked by your security team because of a threat."

ROLE_DEVICE_READ = "Device Read Only / Device Management"
ROLE_DEVICE_MANAGEMENT = "Device Management"
ROLE_DEVICE_ACTIONS = "Device Actions"
ROLE_CPS = "Common Platform Services (CPS)"

NOT_A_TARGET = "rule is not a custom attribute equal to 1"

# CFDEVICE[Action2JB] EQ '1', allowing for spacing, quoting and the case of EQ.
_ATTRIBUTE_RULE = re.compile(
    r"""^\s*CFDEVICE\s*\[\s*(?P<q>['"]?)(?P<attr>[^\]'"]+?)(?P=q)\s*\]"""
    r"""\s*EQ\s*(?P<v>['"]?)1(?P=v)\s*$""",
    re.IGNORECASE,
)


def parse_device(raw: Any) -> DeviceRecord | SkippedRecord:
    """One device of a search (`searchResults[]`) or of `GET /api/v1/device/{id}`."""
    if not isinstance(raw, Mapping):
        return SkippedRecord(f"record is {parsing.json_type(raw)}, not an object")

    mdm_id = ""
    try:
        mdm_id = parsing.ident(raw, "id", digits=True)
        state = parsing.text(raw, "registrationState", SHORT_MAX).upper()
        if not state:
            raise Reject("field registrationState is missing")
        if state != "ACTIVE":
            raise Reject(f"status {state[:40]}")

        platform_raw = parsing.text(raw, "platformType", SHORT_MAX)
        if not platform_raw:
            raise Reject("field platformType is missing")
        platform = parsing.platform(platform_raw)
        if platform is None:
            raise parsing.unsupported(platform_raw)

        return DeviceRecord(
            mdm_id=mdm_id,
            platform=platform,
            os_version=parsing.text(raw, "platformVersion", SHORT_MAX),
            model=parsing.text(raw, "prettyModel", SHORT_MAX)
            or parsing.text(raw, "deviceModel", SHORT_MAX),
            manufacturer=parsing.text(raw, "manufacturer", SHORT_MAX),
            name=parsing.text(raw, "deviceName", NAME_MAX)
            or parsing.text(raw, "entityName", NAME_MAX),
            guid=parsing.text(raw, "guid", ID_MAX),
            serial=parsing.text(raw, "serialNumber", ID_MAX),
            udid=parsing.text(raw, "udid", ID_MAX),
            last_checkin=parsing.timestamp(raw.get("lastCheckin")),
            user=parsing.user(
                parsing.text(raw, "uid", EMAIL_MAX),
                parsing.email(raw, "emailAddress"),
                parsing.text(raw, "firstName", NAME_MAX),
                parsing.text(raw, "lastName", NAME_MAX),
                parsing.text(raw, "displayName", NAME_MAX),
            ),
        )
    except Reject as reason:
        return SkippedRecord(str(reason), mdm_id=mdm_id)


def rule_attribute(definition: str) -> str:
    """The custom attribute a group definition tests for "1", or ""."""
    found = _ATTRIBUTE_RULE.match(definition or "")
    if not found or len(found.group("attr")) > SHORT_MAX:
        return ""
    return found.group("attr").strip()


def parse_group(raw: Any) -> MdmGroup | None:
    """A CPS rule or an /api/v1 rule group; None when it is unusable."""
    if not isinstance(raw, Mapping):
        return None
    try:
        group_id = parsing.ident(raw, "id")
        name = parsing.text(raw, "name", NAME_MAX)
        definition = parsing.text(raw, "definition", 4096)
    except Reject:
        return None
    if not name:
        return None

    attribute = rule_attribute(definition)
    return MdmGroup(
        id=group_id,
        name=name,
        device_count=parsing.count(raw.get("memberCount")),
        target_blocker="" if attribute else NOT_A_TARGET,
        attribute=attribute,
        is_static=raw.get("membershipStatic") is True,
    )


def result_of(data: Any, what: str) -> Any:
    """The `result` of an /api/v1 envelope; an envelope with errors is an InvalidAnswer."""
    if not isinstance(data, Mapping):
        raise InvalidAnswer(f"{what}: the MDM's answer is not an object")
    if data.get("errors") is not None:
        raise InvalidAnswer(f"{what}: {message_in(data) or 'the MDM reported an error'}")
    return data.get("result")


def search_page(data: Any, what: str) -> tuple[list, int]:
    """(searchResults, totalCount) of an /api/v1 search."""
    result = result_of(data, what)
    if not isinstance(result, Mapping):
        raise InvalidAnswer(f"{what}: the MDM's answer has no result")
    total = parsing.count(result.get("totalCount"))
    if total is None:
        raise InvalidAnswer(f"{what}: the MDM's answer has no totalCount")
    return parsing.as_list(result.get("searchResults"), f"{what}: searchResults"), total


def action_done(data: Any, what: str) -> None:
    """Cloud actions answer {"errors": null, "result": 1}; anything else is a refusal."""
    if not isinstance(data, Mapping):
        raise ActionRejected(f"{what}: the MDM did not confirm the change")
    if data.get("errors") is not None or data.get("result") != 1:
        message = message_in(data) or "the MDM did not confirm the change"
        raise ActionRejected(f"{what}: {message}")


class CloudConnector(MobileIronConnector):
    kind = "cloud"

    def __init__(self, *args, lock_message: str = LOCK_MESSAGE, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock_message = lock_message
        self._default_space: str | None = None

    def list_spaces(self) -> list[Space]:
        spaces = []
        for raw in self._search_pages(
            "/api/v1/tenant/partition/device",
            {},
            rows=GROUP_ROWS,
            what="device spaces",
            role=ROLE_DEVICE_READ,
        ):
            if not isinstance(raw, Mapping):
                continue
            try:
                space_id = parsing.ident(raw, "id")
                name = parsing.text(raw, "name", NAME_MAX) or f"space {space_id}"
            except Reject as reason:
                log.warning("device space skipped: %s", reason)
                continue
            spaces.append(Space(space_id, name, is_default=raw.get("defaultPartition") is True))

        if spaces and not any(space.is_default for space in spaces):
            default = self._default_from_metadata()
            spaces = [Space(s.id, s.name, is_default=s.id == default) for s in spaces]
        # "" when the tenant names no default: asked once, not on every call.
        self._default_space = next((s.id for s in spaces if s.is_default), "")
        return spaces

    def _default_from_metadata(self) -> str:
        data = self.http.request("GET", "/api/v1/metadata/tenant", role=ROLE_DEVICE_READ)
        result = result_of(data, "tenant metadata")
        value = result.get("defaultDmPartitionId") if isinstance(result, Mapping) else None
        return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""

    def _is_default(self, space: str) -> bool:
        if self._default_space is None:
            self.list_spaces()
        return str(space) == self._default_space

    def list_groups(self, space: str) -> list[MdmGroup]:
        if self._is_default(space):
            rows = self._cps_pages("/msa/v1/cps/rule", {}, what="device groups (CPS)")
        else:
            rows = self._search_pages(
                "/api/v1/rule_group",
                {"dmPartitionId": space},
                rows=GROUP_ROWS,
                what=f"device groups of space {space}",
                role=ROLE_DEVICE_READ,
            )

        groups = []
        for raw in rows:
            group = parse_group(raw)
            if group is None:
                log.warning("device group skipped in space %s: unusable id or name", space)
                continue
            groups.append(group)
        return groups

    def iter_devices(self, space: str, groups: list[str]) -> Iterator[DevicePage]:
        if self._is_default(space):
            yield from self._default_space_devices(space, groups)
        else:
            yield from self._other_space_devices(space, groups)

    def _default_space_devices(self, space: str, groups: list[str]) -> Iterator[DevicePage]:
        # CPS lists a group's members by guid, without the device details; the space's
        # device search has the details. Membership first, then one pass over the space.
        membership: dict[str, list[str]] = {}
        for group in groups:
            for item in self._cps_pages(
                "/msa/v1/cps/device", {"ruleId": group}, what=f"members of group {group}"
            ):
                guid = item.get("identifier") if isinstance(item, Mapping) else None
                if not isinstance(guid, str) or not 0 < len(guid) <= ID_MAX:
                    continue
                found_in = membership.setdefault(guid.lower(), [])
                if group not in found_in:
                    found_in.append(group)
        if not membership:
            return

        for results, _ in self._device_search(space, "registrationState=ACTIVE", f"space {space}"):
            records = []
            for raw in results:
                guid = raw.get("guid") if isinstance(raw, Mapping) else None
                found_in = membership.get(guid.lower()) if isinstance(guid, str) else None
                if found_in is None:
                    continue
                record = parse_device(raw)
                if isinstance(record, DeviceRecord):
                    record.groups = list(found_in)
                records.append(record)
            yield DevicePage(records, total=len(membership), key=f"space {space}")

    def _other_space_devices(self, space: str, groups: list[str]) -> Iterator[DevicePage]:
        seen: dict[str, list[str]] = {}
        for group in groups:
            if not SAFE_ID.match(str(group)):
                raise NotFound(f"group {str(group)[:40]!r} is not a MobileIron group id")
            query = f"registrationState=ACTIVE AND DEVICEGROUP EQ '{group}'"
            for results, total in self._device_search(space, query, f"group {group}"):
                records = []
                for raw in results:
                    record = parse_device(raw)
                    if isinstance(record, DeviceRecord):
                        found_in = seen.setdefault(record.mdm_id, [])
                        if group not in found_in:
                            found_in.append(group)
                        record.groups = list(found_in)
                    records.append(record)
                yield DevicePage(records, total=total, key=str(group))

    def _device_search(self, space: str, query: str, what: str) -> Iterator[tuple[list, int]]:
        params = {
            "dmPartitionId": space,
            "fq": query,
            "sortFields[0].name": "id",
            "sortFields[0].order": "ASC",
        }
        yield from self._search_lists(
            "/api/v1/device", params, rows=DEVICE_ROWS, what=what, role=ROLE_DEVICE_READ
        )

    def fetch_apps(self, space: str, devices: list[DeviceRecord]) -> dict[str, list[AppRecord]]:
        # An empty answer would read as "no apps installed", so outside the default space,
        # where CPS does not look, this says it can't tell.
        if not self._is_default(space):
            raise NotFound("app inventory comes from CPS, which serves the default space only")

        # CPS app inventory takes guids; the answer is mapped back to the numeric ids.
        by_guid = {device.guid.lower(): device.mdm_id for device in devices if device.guid}
        found: dict[str, list[AppRecord]] = {}
        for batch in batches(sorted(by_guid), APPS_BATCH):
            data = self.http.request(
                "POST",
                "/msa/v1/cps/device/application",
                json_body={"identifiers": batch, "identifierType": "GUID"},
                role=ROLE_CPS,
            )
            for entry in parsing.as_list(data, "app inventory"):
                if not isinstance(entry, Mapping) or not isinstance(entry.get("identifier"), str):
                    continue
                mdm_id = by_guid.get(entry["identifier"].lower())
                items = entry.get("applications")
                if mdm_id is None or not isinstance(items, list):
                    continue
                apps = [parsing.app(item) for item in items]
                found.setdefault(mdm_id, []).extend(app for app in apps if app is not None)
        return found

    def fetch_profiles(
        self, space: str, devices: list[DeviceRecord]
    ) -> dict[str, list[ProfileRecord]]:
        if not self._is_default(space):
            raise NotFound("iOS profiles come from CPS, which serves the default space only")

        by_guid = {
            device.guid.lower(): device.mdm_id
            for device in devices
            if device.platform == "ios" and device.guid
        }
        return self._cps_profiles(by_guid, "GUID", APPS_BATCH, ROLE_CPS)

    def find_device(self, space: str, identifier: str, kind: str) -> DeviceRecord | None:
        if not isinstance(identifier, str) or not SAFE_ID.match(identifier):
            return None
        if kind in ("mdm_id", "uuid") and identifier.isdigit():
            return self._device_by_id(space, identifier)
        if kind in ("mdm_id", "uuid"):
            field = "guid"
        elif kind == "udid":
            field = "udid"
        else:
            raise ValueError(f"unknown identifier kind {kind!r}")

        data = self.http.request(
            "GET",
            "/api/v1/device",
            params={"dmPartitionId": space, "rows": 50, "start": 0, "fq": f"{field}={identifier}"},
            role=ROLE_DEVICE_READ,
        )
        results, _ = search_page(data, "device lookup")
        records = [parse_device(raw) for raw in results]
        found = next((r for r in records if isinstance(r, DeviceRecord)), None)
        # The search has no group list; the device's own page has.
        return self._device_by_id(space, found.mdm_id) if found else None

    def _device_by_id(self, space: str, device_id: str) -> DeviceRecord | None:
        try:
            data = self.http.request(
                "GET",
                "/api/v1/device/{id}",
                path={"id": device_id},
                params={"dmPartitionId": space},
                role=ROLE_DEVICE_READ,
            )
        except NotFound:
            return None

        result = result_of(data, "device")
        record = parse_device(result)
        if not isinstance(record, DeviceRecord):
            return None
        # Every group the device is in; the caller keeps the ones it syncs.
        groups = result.get("groups") if isinstance(result, Mapping) else None
        for group in groups if isinstance(groups, list) else []:
            if isinstance(group, Mapping):
                try:
                    record.groups.append(parsing.ident(group, "id"))
                except Reject:
                    continue
        return record

    def apply_action(self, space: str, action: ActionSpec, mdm_id: str) -> None:
        with refusal_as_rejection(action.kind):
            if action.kind == "attribute":
                self._set_attribute(action, mdm_id, "1")
            elif action.kind == "lock":
                self._lock(mdm_id)
            else:
                raise ActionRejected(f"MobileIron Cloud has no {action.kind!r} action")

    def undo_action(self, space: str, action: ActionSpec, mdm_id: str) -> None:
        with refusal_as_rejection(action.kind):
            if action.kind == "attribute":
                # "0", never an empty value or a dropped key: the portal refuses empty
                # values, and "0" is enough for the "EQ '1'" group to let the device go.
                self._set_attribute(action, mdm_id, "0")
            elif action.kind == "lock":
                raise ActionRejected("a lock can't be undone")
            else:
                raise ActionRejected(f"MobileIron Cloud has no {action.kind!r} action")

    def _set_attribute(self, action: ActionSpec, mdm_id: str, value: str) -> None:
        name = action.attribute.strip()
        if not name or len(name) > SHORT_MAX or parsing.NOT_TEXT.search(name):
            raise ActionRejected("the custom attribute name is empty, too long or not valid text")
        if not str(mdm_id).isdigit():
            raise NotFound(f"{str(mdm_id)[:40]!r} is not a MobileIron Cloud device id")

        # The PUT replaces the whole map, so the map is read first and written back whole.
        data = self.http.request(
            "GET",
            "/api/v1/device/{id}/customattributes",
            path={"id": mdm_id},
            role=ROLE_DEVICE_READ,
        )
        attrs = _attributes(data)
        if attrs.get(name) in ([value], value):
            log.info("custom attribute already set device=%s value=%s", mdm_id, value)
            return

        attrs[name] = [value]
        answer = self.http.request(
            "PUT",
            "/api/v1/device/{id}/customattributes",
            path={"id": mdm_id},
            json_body={"attrs": attrs},
            role=ROLE_DEVICE_MANAGEMENT,
        )
        action_done(answer, "set custom attribute")
        log.info("custom attribute set device=%s value=%s", mdm_id, value)

    def _lock(self, mdm_id: str) -> None:
        if not str(mdm_id).isdigit():
            raise NotFound(f"{str(mdm_id)[:40]!r} is not a MobileIron Cloud device id")
        answer = self.http.request(
            "PUT",
            "/api/v1/device/lock",
            params={"ids": mdm_id, "message": self.lock_message},
            role=ROLE_DEVICE_ACTIONS,
        )
        action_done(answer, "lock")
        log.info("device locked device=%s", mdm_id)

    def _run_checks(self, checks: Checks) -> None:
        spaces = checks.run("connect and list spaces", self.list_spaces, role=ROLE_DEVICE_READ)
        space = next((s.id for s in spaces or [] if s.is_default), None)
        if space is None and spaces:
            space = spaces[0].id

        device = None
        if space is not None:
            device = checks.run(
                "list devices", lambda: self._first_device(space), role=ROLE_DEVICE_READ
            )
        checks.run("list device groups (CPS)", self._first_rule, role=ROLE_CPS)
        if device is not None and device.guid:
            checks.run(
                "read app inventory (CPS)", lambda: self.fetch_apps(space, [device]), role=ROLE_CPS
            )
        else:
            checks.note("read app inventory (CPS)", "not checked: no active device to ask about")

    def _note_unchecked(self, checks: Checks) -> None:
        checks.note("MDM version", "not checked: MobileIron Cloud does not report its version")
        checks.note(
            "set custom attributes",
            "not checked: would change a device",
            role=ROLE_DEVICE_MANAGEMENT,
        )
        checks.note("lock devices", "not checked: would change a device", role=ROLE_DEVICE_ACTIONS)

    def _first_device(self, space: str) -> DeviceRecord | None:
        data = self.http.request(
            "GET",
            "/api/v1/device",
            params={
                "dmPartitionId": space,
                "rows": 1,
                "start": 0,
                "fq": "registrationState=ACTIVE",
            },
            role=ROLE_DEVICE_READ,
        )
        results, _ = search_page(data, "devices")
        records = [parse_device(raw) for raw in results]
        return next((r for r in records if isinstance(r, DeviceRecord)), None)

    def _first_rule(self) -> bool:
        data = self.http.request(
            "GET", "/msa/v1/cps/rule", params={"offset": 0, "limit": 1}, role=ROLE_CPS
        )
        cps_page(data, "device groups (CPS)")
        return True

    def _search_pages(self, template, params, *, rows, what, role) -> Iterator[Any]:
        for results, _ in self._search_lists(template, params, rows=rows, what=what, role=role):
            yield from results

    def _search_lists(self, template, params, *, rows, what, role) -> Iterator[tuple[list, int]]:
        """Pages of an /api/v1 search (start + rows), checked for loops and early ends."""
        guard = PageGuard(what)
        start = 0
        while True:
            data = self.http.request(
                "GET", template, params={**params, "rows": rows, "start": start}, role=role
            )
            results, total = search_page(data, what)
            more = start + len(results) < total
            guard.check(page_ids(results, "id"), start, more=more)
            yield results, total

            start += len(results)
            if start >= total:
                return

    def _cps_pages(self, template, params, *, what) -> Iterator[Any]:
        """Items of a CPS list (offset + limit). A short page is the last one."""
        guard = PageGuard(what)
        offset = 0
        while True:
            data = self.http.request(
                "GET",
                template,
                params={**params, "offset": offset, "limit": CPS_LIMIT},
                role=ROLE_CPS,
            )
            results, total = cps_page(data, what)
            more = total is not None and offset + len(results) < total
            key = "identifier" if template.endswith("/device") else "id"
            guard.check(page_ids(results, key), offset, more=more)
            yield from results

            offset += len(results)
            if len(results) < CPS_LIMIT and not more:
                return


def cps_page(data: Any, what: str) -> tuple[list, int | None]:
    """(searchResults, total) of a CPS list; `results` is taken as the total when it is
    larger than the page, since CPS documents no other count."""
    if not isinstance(data, Mapping):
        raise InvalidAnswer(f"{what}: the MDM's answer is not an object")
    results = parsing.as_list(data.get("searchResults"), f"{what}: searchResults")
    return results, parsing.count(data.get("results"))


def _attributes(data: Any) -> dict:
    """The custom attribute map from a GET, with or without the /api/v1 envelope."""
    if isinstance(data, Mapping) and "attrs" not in data and "result" in data:
        data = result_of(data, "custom attributes")
    attrs = data.get("attrs") if isinstance(data, Mapping) else None
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise InvalidAnswer("custom attributes: attrs is not an object")
    return dict(attrs)
