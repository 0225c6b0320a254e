"""Hostile and odd records: each one is skipped with a reason, or cleaned, never trusted."""

from datetime import UTC, datetime

import pytest

from bastion.mdm.connectors import cloud, core, parsing
from bastion.mdm.connectors.base import DeviceRecord, SkippedRecord
from bastion.mdm.connectors.http import parse_json


def core_row(**changes) -> dict:
    row = {
        "common.uuid": "2f1d7c1e-0000-4000-8000-000000000001",
        "common.id": 7,
        "common.status": "ACTIVE",
        "common.platform": "iOS",
        "common.platform_name": "iOS 17.4",
        "common.os_version": "17.4",
        "common.model": "iPhone 15",
        "common.manufacturer": "Apple Inc.",
        "common.SerialNumber": "F2LXK0AAHG7F",
        "ios.iPhone UDID": "00008110-000A1C2E3E38801E",
        "common.last_connected_at": "2024-03-01T10:00:00.000Z",
        "user.user_id": "alice",
        "user.email_address": "Alice.Martin@Example.com",
        "user.display_name": "Alice Martin",
        "user.first_name": "Alice",
        "user.last_name": "Martin",
    }
    row.update(changes)
    return row


def cloud_row(**changes) -> dict:
    row = {
        "id": 1042,
        "guid": "5D3C2B1A-0000-4000-8000-000000000042",
        "platformType": "ANDROID",
        "platformVersion": "14",
        "deviceModel": "Pixel 8",
        "prettyModel": "Pixel 8",
        "manufacturer": "Google",
        "deviceName": "Bob's Pixel",
        "registrationState": "ACTIVE",
        "serialNumber": "33011FDH2000AB",
        "udid": None,
        "lastCheckin": 1709287200000,
        "uid": "bob@example.com",
        "emailAddress": "bob@example.com",
        "firstName": "Bob",
        "lastName": "Stone",
        "displayName": "Bob Stone",
    }
    row.update(changes)
    return row


def test_a_clean_core_row_becomes_a_device_with_its_user():
    record = core.parse_device(core_row())

    assert record == DeviceRecord(
        mdm_id="2f1d7c1e-0000-4000-8000-000000000001",
        platform="ios",
        os_version="17.4",
        model="iPhone 15",
        manufacturer="Apple Inc.",
        guid="2f1d7c1e-0000-4000-8000-000000000001",
        serial="F2LXK0AAHG7F",
        udid="00008110-000A1C2E3E38801E",
        last_checkin=datetime(2024, 3, 1, 10, tzinfo=UTC),
        user=parsing.UserRecord(
            uid="alice",
            email="alice.martin@example.com",
            first_name="Alice",
            last_name="Martin",
            display_name="Alice Martin",
        ),
    )


def test_a_clean_cloud_row_becomes_a_device_keyed_by_its_numeric_id():
    record = cloud.parse_device(cloud_row())

    assert isinstance(record, DeviceRecord)
    assert (record.mdm_id, record.guid, record.platform, record.name) == (
        "1042",
        "5D3C2B1A-0000-4000-8000-000000000042",
        "android",
        "Bob's Pixel",
    )
    assert record.last_checkin == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert record.user.uid == "bob@example.com"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"common.model": "x" * 10_000}, "field common.model longer than 128 characters"),
        ({"user.display_name": "A" * 256}, "field user.display_name longer than 255 characters"),
        ({"common.manufacturer": "Appl\udce9"}, "field common.manufacturer is not valid text"),
        ({"common.model": "iPhone\x00"}, "field common.model is not valid text"),
        (
            {"common.os_version": {"major": 17}},
            "field common.os_version has the wrong type (an object)",
        ),
        (
            {"common.SerialNumber": ["F2LX"]},
            "field common.SerialNumber has the wrong type (a list)",
        ),
        ({"user.first_name": True}, "field user.first_name has the wrong type (a boolean)"),
        ({"common.uuid": ""}, "field common.uuid is missing"),
        ({"common.uuid": "*****"}, "field common.uuid is missing"),
        ({"common.uuid": None}, "field common.uuid is missing"),
        ({"common.uuid": "u" * 129}, "field common.uuid longer than 128 characters"),
        ({"common.status": "RETIRED"}, "status RETIRED"),
        ({"common.status": ""}, "field common.status is missing"),
        (
            {"common.platform": "Windows Phone", "common.platform_name": ""},
            "unsupported platform Windows Phone",
        ),
        ({"common.platform": "", "common.platform_name": ""}, "field common.platform is missing"),
        (
            {"user.email_address": "a" * 250 + "@x.com"},
            "field user.email_address longer than 254 characters",
        ),
    ],
)
def test_hostile_core_rows_are_skipped_with_the_field_named(changes, reason):
    record = core.parse_device(core_row(**changes))

    assert isinstance(record, SkippedRecord)
    assert record.reason == reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"deviceName": "N" * 10_240}, "field deviceName longer than 255 characters"),
        ({"deviceName": "\udcff\udcfe"}, "field deviceName is not valid text"),
        ({"guid": {"$oid": "x"}}, "field guid has the wrong type (an object)"),
        ({"id": "12a"}, "field id is not a number"),
        ({"id": 12.5}, "field id has the wrong type (float)"),
        ({"id": None}, "field id is missing"),
        ({"platformType": "WINDOWS_PHONE"}, "unsupported platform WINDOWS_PHONE"),
        ({"platformType": "OSX"}, "unsupported platform OSX"),
        ({"platformType": None}, "field platformType is missing"),
        ({"registrationState": "WIPED"}, "status WIPED"),
        ({"firstName": 12 * [1]}, "field firstName has the wrong type (a list)"),
    ],
)
def test_hostile_cloud_rows_are_skipped_with_the_field_named(changes, reason):
    record = cloud.parse_device(cloud_row(**changes))

    assert isinstance(record, SkippedRecord)
    assert record.reason == reason


def test_a_skipped_row_keeps_its_id_once_the_id_itself_was_valid():
    assert cloud.parse_device(cloud_row(platformType="OSX")).mdm_id == "1042"
    assert core.parse_device(core_row(**{"common.uuid": "*"})).mdm_id == ""


def test_a_row_that_is_not_an_object_is_skipped():
    assert core.parse_device(["common.uuid"]) == SkippedRecord("record is a list, not an object")
    assert cloud.parse_device("1042") == SkippedRecord("record is str, not an object")


@pytest.mark.parametrize(
    "placeholder", ["*****", "*", "", "Not Present", "UNKNOWN", "unknown", None, "  "]
)
def test_placeholders_never_become_identities(placeholder):
    record = cloud.parse_device(
        cloud_row(
            serialNumber=placeholder, udid=placeholder, emailAddress=placeholder, uid=placeholder
        )
    )

    assert isinstance(record, DeviceRecord)
    assert (record.serial, record.udid) == ("", "")
    assert record.user is None


def test_obfuscated_core_serials_are_empty_not_shared():
    first = core.parse_device(core_row(**{"common.SerialNumber": "*****"}))
    second = core.parse_device(
        core_row(**{"common.uuid": "other", "common.SerialNumber": "********"})
    )

    assert first.serial == second.serial == ""


def test_an_email_without_at_sign_counts_as_missing_and_the_user_id_is_kept():
    record = cloud.parse_device(cloud_row(emailAddress="email", uid="u-17"))

    assert record.user.email == ""
    assert record.user.uid == "u-17"


def test_an_email_alone_is_enough_for_a_user():
    record = core.parse_device(core_row(**{"user.user_id": "*****"}))

    assert record.user.uid == "alice.martin@example.com"


def test_core_platform_falls_back_to_platform_name():
    record = core.parse_device(
        core_row(**{"common.platform": "", "common.platform_name": "Android 14"})
    )

    assert record.platform == "android"


@pytest.mark.parametrize(
    "value", ["yesterday", "2024-13-45T99:00:00Z", -5, 10**30, True, {"t": 1}, "9" * 80]
)
def test_garbage_times_become_none_without_skipping(value):
    record = cloud.parse_device(cloud_row(lastCheckin=value))

    assert isinstance(record, DeviceRecord)
    assert record.last_checkin is None


def test_times_are_aware_utc():
    assert parsing.timestamp("2024-03-01T11:00:00+01:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert parsing.timestamp("2024-03-01T10:00:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert parsing.timestamp("1709287200000") == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_bytes_that_are_not_utf8_spoil_only_their_record():
    body = (
        b'{"results": ['
        + b'{"common.uuid": "good", "common.status": "ACTIVE", "common.platform": "Android"},'
        + b'{"common.uuid": "bad", "common.status": "ACTIVE", "common.platform": "Android",'
        + b' "user.display_name": "Ren\xe9e"}'
        + b"]}"
    )

    records = [core.parse_device(raw) for raw in parse_json(body)["results"]]

    assert isinstance(records[0], DeviceRecord)
    assert records[1] == SkippedRecord("field user.display_name is not valid text", mdm_id="bad")


def test_an_absurd_number_skips_its_record_instead_of_failing_the_page():
    body = b'{"result": {"totalCount": 1, "searchResults": [{"id": ' + b"9" * 5000 + b"}]}}"

    results, _ = cloud.search_page(parse_json(body), "test")

    assert cloud.parse_device(results[0]) == SkippedRecord("field id longer than 128 characters")


def test_apps_and_profiles_drop_bad_items_one_by_one():
    items = [
        {"identifier": "com.example.good", "name": "Good", "version": "1.0"},
        {"identifier": "", "name": "no id"},
        {"identifier": "com.example.long", "name": "L" * 300},
        "not an object",
    ]

    apps = [parsing.app(item) for item in items]

    assert [a.identifier if a else None for a in apps] == ["com.example.good", None, None, None]
    assert parsing.profile({"identifier": "p", "managed": "true"}).managed is False
    assert parsing.profile({"identifier": "p", "managed": True}).managed is True


@pytest.mark.parametrize(
    ("definition", "attribute"),
    [
        ("CFDEVICE[Action2JB] EQ '1'", "Action2JB"),
        ('  cfdevice [ Action2JB ]   eq  "1" ', "Action2JB"),
        ("CFDEVICE['Threat Level'] Eq 1", "Threat Level"),
        ("CFDEVICE[Action2JB] EQ '10'", ""),
        ("CFDEVICE[Action2JB] NEQ '1'", ""),
        ("CFDEVICE[Action2JB] EQ '1' AND PLATFORMTYPE EQ 'IOS'", ""),
        ("PLATFORMTYPE EQ 'IOS'", ""),
        ("", ""),
    ],
)
def test_group_definitions_name_their_attribute_only_for_eq_1(definition, attribute):
    group = cloud.parse_group({"id": 5, "name": "Threat", "definition": definition})

    assert group.attribute == attribute
    assert group.target_blocker == ("" if attribute else cloud.NOT_A_TARGET)


def test_core_labels_are_targets_only_when_static_and_not_system():
    static = core.parse_label({"id": 4, "name": "Quarantine", "isStatic": True, "rowType": "ADMIN"})
    dynamic = core.parse_label({"id": 5, "name": "iOS", "isStatic": False, "criteria": "x"})
    system = core.parse_label({"id": 6, "name": "Android", "isStatic": True, "rowType": "SYSTEM"})

    assert static.target_blocker == ""
    assert dynamic.target_blocker == "dynamic label (criteria)"
    assert system.target_blocker == "system label"
    assert core.parse_label({"id": 7, "name": "x" * 300}) is None
