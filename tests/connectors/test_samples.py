"""Every real MobileIron sample in shared/reference goes through our parsers."""

from datetime import UTC, datetime

import pytest

from bastion.mdm.connectors import cloud, core, parsing
from bastion.mdm.connectors.base import DeviceRecord, MdmGroup, SkippedRecord
from bastion.mdm.connectors.http import parse_json

from .conftest import SAMPLES

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason="shared/reference/samples is not beside the repository"
)


def load(name: str):
    return parse_json((SAMPLES / name).read_bytes())


def json_files(folder: str) -> list[str]:
    if not SAMPLES.is_dir():
        return []
    return sorted(f"{folder}/{path.name}" for path in (SAMPLES / folder).glob("*.json"))


@pytest.mark.parametrize("name", json_files("core") + json_files("cloud"))
def test_every_sample_decodes_as_json(name):
    assert load(name) is not None


def test_core_device_page_gives_active_android_devices_with_obfuscated_user_left_out():
    page = load("core/v2_devices_get__page1.json")

    records = [core.parse_device(raw) for raw in page["results"]]

    assert [r.mdm_id for r in records] == [
        "9b0da853-0000-0000-0000-f4b5457299cf",
        "8b0da853-0000-0000-0000-f4b5457299cf",
    ]
    first = records[0]
    assert isinstance(first, DeviceRecord)
    assert (first.platform, first.os_version, first.model, first.manufacturer) == (
        "android",
        "10.0",
        "Pixel",
        "Google",
    )
    assert first.last_checkin == datetime(2020, 11, 9, 7, 38, 22, tzinfo=UTC)
    # "*****" user id and email are GDPR obfuscation, not an identity.
    assert first.user is None
    assert first.guid == first.mdm_id


def test_core_label_summary_marks_all_smartphones_as_a_system_label():
    page = load("core/v2_labels_label_summary__TRUNCATED.json")

    labels = [core.parse_label(raw) for raw in page["results"]]

    assert labels == [
        MdmGroup(id="-1", name="All-Smartphones", target_blocker="system label", is_static=False)
    ]


@pytest.mark.parametrize(
    "name", ["core/v2_ping__ivanti_doc.json", "core/v2_ping__xsoar_testdata.json"]
)
def test_core_ping_versions(name):
    version = load(name)["results"]["vspVersion"]

    parsed = core.parse_version(version)

    assert parsed == ((8, 0, 0, 0) if version else None)
    assert parsed is None or parsed < core.MIN_VERSION


def test_core_cps_profiles_keep_the_managed_flag():
    answer = load("core/cps_device_profile__TRUNCATED.json")

    profiles = [parsing.profile(item) for item in answer[0]["profiles"]]

    assert [(p.identifier, p.name, p.organization, p.managed) for p in profiles] == [
        ("mi.webclip.35016.0", "Apple App Catalog", "acme, Inc.", True),
        ("mi.credentialidentitydg.35018.0", "Identity for the App Catalog", "acme, Inc.", True),
    ]


def test_core_action_answer_is_understood_as_success():
    answer = load("core/v2_devices_action__WAKE_UP.json")

    assert answer["successful"] is True


def test_cps_device_list_example_has_guids_and_times():
    items = load("core/cps_devices_list__doc_example.json")

    assert [item["identifier"][:8] for item in items] == ["24f048d3", "b9a0d7d0"]
    assert parsing.timestamp(items[0]["lastCheckInTime"]) == datetime(
        2016, 7, 22, 8, 41, 59, 585000, tzinfo=UTC
    )


def test_cloud_search_page_skips_retired_devices_with_their_state():
    page = load("cloud/device_search_page1_windows_android.json")
    results, total = cloud.search_page(page, "sample")

    records = [cloud.parse_device(raw) for raw in results]

    assert total == 3
    assert records == [
        SkippedRecord("status RETIRE_PENDING", mdm_id="1000000"),
        SkippedRecord("status RETIRED", mdm_id="1000001"),
    ]


def test_cloud_device_by_id_is_a_windows_device_and_carries_groups():
    result = cloud.result_of(load("cloud/device_by_id.json"), "sample")

    record = cloud.parse_device(result)

    assert record == SkippedRecord("unsupported platform WINDOWS_PHONE", mdm_id="123")
    assert [g["id"] for g in result["groups"]] == [1, 2]


def test_cloud_device_by_id_parses_fully_once_it_is_an_android_device():
    result = dict(cloud.result_of(load("cloud/device_by_id.json"), "sample"))
    result["platformType"] = "ANDROID"

    record = cloud.parse_device(result)

    assert isinstance(record, DeviceRecord)
    assert (record.mdm_id, record.platform, record.guid) == (
        "123",
        "android",
        "00000000-2ec7-4b17-0000-22a2f73ab829",
    )
    assert record.name == "DESKTOP-B76IV6U"
    assert record.serial == ""  # null
    assert record.udid == "UIDVALUE"
    assert record.last_checkin == datetime.fromtimestamp(1596026443798 / 1000, tz=UTC)
    # uid "userid" is an id; "email" has no @ and counts as missing.
    assert record.user.uid == "userid"
    assert record.user.email == ""
    assert record.user.display_name == "Windows User"


def test_cloud_cps_rules_are_listed_but_are_not_targets():
    page = load("cloud/cps_rule_device_groups.json")
    results, total = cloud.cps_page(page, "sample")

    groups = [cloud.parse_group(raw) for raw in results]

    assert total == 2
    assert [(g.id, g.name, g.target_blocker) for g in groups] == [
        ("38089", "rule1", cloud.NOT_A_TARGET),
        ("38090", "rule2", cloud.NOT_A_TARGET),
    ]


def test_cloud_spaces_sample_has_one_default_space():
    results, _ = cloud.search_page(load("cloud/tenant_partition_device.json"), "sample")

    defaults = [raw["id"] for raw in results if raw["defaultPartition"] is True]

    assert defaults == [100001]


def test_cloud_custom_attributes_sample_keeps_plain_string_values():
    attrs = cloud._attributes(load("cloud/device_customattributes_get.json"))

    assert attrs == {"cityId": "SF", "carrier": "att"}


def test_cloud_lock_answer_counts_as_done():
    cloud.action_done(load("cloud/device_lock_result.json"), "lock")


def test_cloud_400_body_names_the_field():
    from bastion.mdm.connectors.http import mdm_message

    message = mdm_message((SAMPLES / "cloud/error_400_rows_over_500.json").read_bytes())

    assert message == "rows: must be between 1 and 500"


def test_cloud_custom_attribute_definitions_decode():
    result = cloud.result_of(load("cloud/customattributes_definitions_partial.json"), "sample")

    assert [item["name"] for item in result["searchResults"]] == ["firstName", "fn"]
