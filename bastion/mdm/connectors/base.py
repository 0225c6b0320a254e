"""The one small interface every MDM connector implements.

A connector turns an MDM's HTTP API into the records below and raises only the
exceptions below. The sync engine, the activation flow and the response engine know
nothing else about an MDM: adding a product is adding a module and its tests.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime


class MdmError(Exception):
    """Base of every connector error. `retryable` is the whole retry decision."""

    retryable = False

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BadUrl(MdmError):
    """The URL can't be used (scheme, host, or http where only https is allowed)."""


class Unreachable(MdmError):
    """DNS, connection refused, or a timeout: nothing answered."""

    retryable = True


class TlsError(MdmError):
    """The server answered, but its certificate could not be verified."""


class Transient(MdmError):
    """5xx, 429 or a dropped connection: worth trying again later."""

    retryable = True


class Unauthorized(MdmError):
    """401: the username or password is wrong, or has been revoked."""


class Forbidden(MdmError):
    """403: the account lacks a role. `role` names it where the connector knows."""

    def __init__(self, message: str, *, role: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.role = role


class NotFound(MdmError):
    """404, or the object named in the call no longer exists in the MDM."""


class InvalidAnswer(MdmError):
    """The MDM answered something we can't parse or that breaks its own paging rules."""


class ActionRejected(MdmError):
    """The MDM answered 200 but refused the action (Core's `successful: false`)."""


@dataclass(frozen=True)
class Space:
    id: str
    name: str
    is_default: bool = False


@dataclass(frozen=True)
class MdmGroup:
    """A Core label or a Cloud device group, as listed by the MDM."""

    id: str
    name: str
    device_count: int | None = None
    # Why this group can't be an MDM action target, or "" when it can.
    target_blocker: str = ""
    # Cloud: the custom device attribute that a dynamic group matches with "EQ '1'".
    attribute: str = ""
    is_static: bool = False


@dataclass
class UserRecord:
    uid: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""


@dataclass
class DeviceRecord:
    """One managed device as the MDM reports it, already validated and normalised.

    `mdm_id` is the id the MDM's actions take (Core: the uuid; Cloud: the numeric id).
    Serial and UDID are carried only so the sync can hash them; they are never stored.
    """

    mdm_id: str
    platform: str  # "ios" or "android"
    os_version: str = ""
    model: str = ""
    manufacturer: str = ""
    name: str = ""
    guid: str = ""  # Cloud: the device guid; Core: same as mdm_id
    serial: str = ""
    udid: str = ""
    active: bool = True
    last_checkin: datetime | None = None
    user: UserRecord | None = None
    # Ids of the selected MDM groups this record was found in.
    groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SkippedRecord:
    """A record the MDM sent that can't be used; counted with its reason, never fatal."""

    reason: str
    mdm_id: str = ""


@dataclass(frozen=True)
class AppRecord:
    identifier: str
    name: str = ""
    version: str = ""


@dataclass(frozen=True)
class ProfileRecord:
    identifier: str
    name: str = ""
    organization: str = ""
    managed: bool = False


@dataclass
class DevicePage:
    """A page of devices, with how many the MDM says exist in total (for progress)."""

    records: list[DeviceRecord | SkippedRecord]
    # How many records the MDM says the sequence this page belongs to holds, and which
    # sequence that is (a label, a group, a space search), for the progress bar.
    total: int | None = None
    key: str = ""


@dataclass
class CheckResult:
    name: str  # what was checked, e.g. "list labels"
    ok: bool | None  # None: could not be checked
    detail: str = ""
    role: str = ""  # the role that is missing, when known


@dataclass
class ConnectionReport:
    ok: bool
    problem: str = ""  # bad_url, unreachable, tls, unauthorized, forbidden, invalid, ""
    message: str = ""
    version: str = ""
    warnings: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)


@dataclass(frozen=True)
class ActionSpec:
    """An MDM action a threat response asks for.

    kind "label": Core applies the label named `name`.
    kind "attribute": Cloud sets custom device attribute `attribute` to "1" (undo: "0").
    kind "lock": Cloud locks the device; it can't be undone.
    """

    kind: str
    name: str = ""
    attribute: str = ""


class Connector:
    """What the sync, the activation flow and the response engine call."""

    kind: str = ""

    def test_connection(self) -> ConnectionReport:
        raise NotImplementedError

    def list_spaces(self) -> list[Space]:
        raise NotImplementedError

    def list_groups(self, space: str) -> list[MdmGroup]:
        """Every label or device group of the space; raises on an incomplete listing."""
        raise NotImplementedError

    def iter_devices(self, space: str, groups: list[str]) -> Iterator[DevicePage]:
        """Pages of the devices in the selected groups, highest priority group first.

        `groups` is ordered by priority. Each record's `groups` names the selected groups
        it was found in so far. Raises an MdmError when any group could not be fetched
        completely, so the caller can tell a complete fetch from a partial one.
        """
        raise NotImplementedError

    def fetch_apps(self, space: str, devices: list[DeviceRecord]) -> dict[str, list[AppRecord]]:
        """Installed apps per mdm_id; a device missing from the answer had none reported."""
        raise NotImplementedError

    def fetch_profiles(
        self, space: str, devices: list[DeviceRecord]
    ) -> dict[str, list[ProfileRecord]]:
        """iOS configuration profiles per mdm_id. Raises NotFound where the MDM has none."""
        raise NotImplementedError

    def find_device(self, space: str, identifier: str, kind: str) -> DeviceRecord | None:
        """Looks one device up for an ad-hoc sync. `kind`: "mdm_id", "uuid" or "udid"."""
        raise NotImplementedError

    def apply_action(self, space: str, action: ActionSpec, mdm_id: str) -> None:
        """Applies the action; raises ActionRejected, NotFound or another MdmError."""
        raise NotImplementedError

    def undo_action(self, space: str, action: ActionSpec, mdm_id: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
