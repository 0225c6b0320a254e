"""Validation shared by every connector: everything an MDM sends is untrusted.

A record that breaks a rule raises `Reject` with the reason the sync counts and shows
("field deviceName longer than 255 characters"); the product module turns it into a
SkippedRecord. Placeholders and obfuscated values become "" so that they can never be
taken for an identity: two devices whose serial is "*****" are not the same device.
"""

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bastion.mdm.connectors.base import AppRecord, InvalidAnswer, ProfileRecord, UserRecord

ID_MAX = 128
NAME_MAX = 255
EMAIL_MAX = 254
SHORT_MAX = 128

# Values MDMs send when they have nothing to say; compared case-insensitively.
PLACEHOLDERS = frozenset({"not present", "unknown", "null", "n/a"})

# Lone surrogates come from bytes that were not UTF-8 (see http.parse_json) or from
# "\ud800" escapes; NUL can't be stored in PostgreSQL text.
NOT_TEXT = re.compile(r"[\x00\ud800-\udfff]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
# Epoch milliseconds outside 1990..2200 are garbage, not a time.
_MS_MIN = 631_152_000_000
_MS_MAX = 7_258_118_400_000


class Reject(Exception):
    """The record can't be used; str(self) is the reason."""


def json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return type(value).__name__


def is_placeholder(value: str) -> bool:
    return not value or set(value) == {"*"} or value.lower() in PLACEHOLDERS


def text(record: Mapping, key: str, limit: int = NAME_MAX, *, strip: bool = True) -> str:
    """A string field, stripped, "" when missing or a placeholder; raises Reject.

    `strip=False` keeps surrounding spaces, for names that are sent back to the MDM.
    """
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, bool):
        raise Reject(f"field {key} has the wrong type (a boolean)")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise Reject(f"field {key} has the wrong type ({json_type(value)})")
    if len(value) > limit:
        raise Reject(f"field {key} longer than {limit} characters")
    if NOT_TEXT.search(value):
        raise Reject(f"field {key} is not valid text")

    if is_placeholder(value.strip()):
        return ""
    return value.strip() if strip else value


def ident(record: Mapping, key: str, limit: int = ID_MAX, *, digits: bool = False) -> str:
    """A required id: a string or an integer, never a placeholder; raises Reject."""
    value = record.get(key)
    if isinstance(value, float | bool):
        raise Reject(f"field {key} has the wrong type ({json_type(value)})")
    result = text(record, key, limit)
    if not result:
        raise Reject(f"field {key} is missing")
    if digits and not result.isdigit():
        raise Reject(f"field {key} is not a number")
    return result


def email(record: Mapping, key: str) -> str:
    """Lower-cased; anything that does not look like an address counts as missing."""
    value = text(record, key, EMAIL_MAX).lower()
    return value if _EMAIL.match(value) else ""


def timestamp(value: Any) -> datetime | None:
    """ISO-8601 (Core) or epoch milliseconds (Cloud) as an aware UTC time; garbage is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value or len(value) > 64:
            return None
        if value.isdigit():
            value = int(value)
        else:
            return _iso_time(value)
    if not isinstance(value, int | float) or not _MS_MIN <= value <= _MS_MAX:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _iso_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def platform(value: str) -> str | None:
    """Maps "iOS", "ANDROID", "Android 10.0" to "ios" or "android"; None for the rest."""
    words = value.lower().replace("_", " ").split()
    if not words:
        return None
    if words[0] in ("ios", "ipados"):
        return "ios"
    if words[0] == "android":
        return "android"
    return None


def unsupported(value: str) -> Reject:
    return Reject(f"unsupported platform {value[:40]}")


def user(uid: str, address: str, first: str, last: str, display: str) -> UserRecord | None:
    """The device's user, keyed by the MDM's user id or else the email; None if neither."""
    if not uid and not address:
        return None
    return UserRecord(
        uid=uid or address,
        email=address,
        first_name=first,
        last_name=last,
        display_name=display,
    )


def app(item: Any) -> AppRecord | None:
    """One installed app; None when it can't be used (apps are dropped one by one)."""
    if not isinstance(item, Mapping):
        return None
    try:
        identifier = text(item, "identifier", NAME_MAX)
        if not identifier:
            return None
        return AppRecord(
            identifier=identifier,
            name=text(item, "name", NAME_MAX),
            version=text(item, "version", SHORT_MAX),
        )
    except Reject:
        return None


def profile(item: Any) -> ProfileRecord | None:
    """One iOS configuration profile; only a literal true counts as managed."""
    if not isinstance(item, Mapping):
        return None
    try:
        identifier = text(item, "identifier", NAME_MAX)
        if not identifier:
            return None
        return ProfileRecord(
            identifier=identifier,
            name=text(item, "displayName", NAME_MAX),
            organization=text(item, "organization", NAME_MAX),
            managed=item.get("managed") is True,
        )
    except Reject:
        return None


def as_list(value: Any, what: str) -> list:
    """A list the MDM must send; None counts as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidAnswer(f"{what} is {json_type(value)}, not a list")
    return value


def count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
