"""The Cloud connector against the emulated Cloud, over real loopback HTTP."""

import time

import pytest

from bastion.mdm.connectors import get_connector
from bastion.mdm.connectors.base import (
    ActionRejected,
    ActionSpec,
    DeviceRecord,
    Forbidden,
    InvalidAnswer,
    NotFound,
    Transient,
    Unauthorized,
)
from bastion.mdm.connectors.cloud import LOCK_MESSAGE, NOT_A_TARGET, ROLE_CPS, CloudConnector

from .conftest import CLOUD_ADMIN, closed_port, control, requests_to

DEFAULT = "100001"
MARKETING = "100002"
EXECUTIVES, SALES, IOS = "38011", "38010", "38002"
THREAT_GROUP = "38012"


def connect(handle, username=CLOUD_ADMIN[0], password=CLOUD_ADMIN[1], **options):
    options.setdefault("allow_http", True)
    options.setdefault("backoff", 0.01)
    return CloudConnector(handle.base_url("cloud"), username, password, **options)


def members(handle, group: str) -> list[int]:
    return control(handle, "GET", f"/state/cloud/groups/{group}")["members"]


def device_state(handle, device_id) -> dict:
    return control(handle, "GET", f"/state/cloud/devices/{device_id}")


def active(handle, space: int = 100001, **wanted):
    return [
        d
        for d in handle.fleet.cloud.devices
        if d.state == "ACTIVE"
        and d.space == space
        and all(getattr(d, key) == value for key, value in wanted.items())
    ]


def record_of(device) -> DeviceRecord:
    return DeviceRecord(
        mdm_id=str(device.id),
        platform=device.platform.lower(),
        guid=device.guid,
        udid=device.udid or "",
    )


# Listing


def test_spaces_name_the_default_one(mdm):
    spaces = connect(mdm).list_spaces()

    assert [(s.id, s.name, s.is_default) for s in spaces] == [
        (DEFAULT, "Default Space", True),
        (MARKETING, "Marketing Space", False),
    ]


def test_default_space_groups_come_from_cps_and_name_their_attribute(mdm):
    groups = {g.id: g for g in connect(mdm).list_groups(DEFAULT)}

    assert groups[THREAT_GROUP].attribute == "MTDThreat"
    assert groups[THREAT_GROUP].target_blocker == ""
    assert groups[IOS].target_blocker == NOT_A_TARGET
    assert requests_to(mdm, "/msa/v1/cps/rule")
    assert not requests_to(mdm, "/api/v1/rule_group")


def test_other_space_groups_come_from_rule_groups(mdm):
    groups = {g.name: g for g in connect(mdm).list_groups(MARKETING)}

    assert groups["Marketing MTD Threat"].attribute == "MTDThreat"
    assert groups["Marketing iPhones"].device_count is not None
    assert requests_to(mdm, "/api/v1/rule_group")


# Sync


def test_default_space_devices_of_the_selected_groups_come_back_with_their_groups(mdm):
    selected = [EXECUTIVES, SALES, IOS]
    state = {d.id: d.state for d in mdm.fleet.cloud.devices}
    in_group = {group: set(members(mdm, group)) for group in selected}

    pages = list(connect(mdm).iter_devices(DEFAULT, selected))

    records = [r for page in pages for r in page.records]
    expected = {i for group in selected for i in in_group[group] if state[i] == "ACTIVE"}
    assert sorted(int(r.mdm_id) for r in records) == sorted(expected)
    for record in records:
        device_id = int(record.mdm_id)
        assert record.groups == [g for g in selected if device_id in in_group[g]]
    searches = requests_to(mdm, "/api/v1/device")
    assert all(
        "rows=500" in e["path"] and "registrationState%3DACTIVE" in e["path"] for e in searches
    )
    assert len(searches) == 2
    assert all("limit=50" in e["path"] for e in requests_to(mdm, "/msa/v1/cps/device"))


def test_other_space_devices_are_searched_group_by_group(mdm):
    selected = ["38102", "38101"]
    state = {d.id: d.state for d in mdm.fleet.cloud.devices}

    pages = list(connect(mdm).iter_devices(MARKETING, selected))

    by_group = {}
    for page in pages:
        by_group.setdefault(page.key, []).extend(page.records)
    for group in selected:
        expected = {i for i in members(mdm, group) if state[i] == "ACTIVE"}
        assert {int(r.mdm_id) for r in by_group[group]} == expected
    iphones = {r.mdm_id for r in by_group["38102"]}
    later = [r for r in by_group["38101"] if r.mdm_id in iphones]
    assert later and all(r.groups == ["38102", "38101"] for r in later)
    assert "DEVICEGROUP+EQ+%2738102%27" in requests_to(mdm, "/api/v1/device")[0]["path"]


def test_a_repeated_device_page_stops_the_sync(mdm):
    mdm.set_faults([{"kind": "repeat_page", "product": "cloud", "path": "/api/v1/device?"}])

    with pytest.raises(InvalidAnswer, match="space 100001: .*repeats"):
        list(connect(mdm).iter_devices(DEFAULT, [IOS]))


def test_an_empty_member_page_while_more_are_promised_stops_the_sync(mdm):
    mdm.set_faults(
        [{"kind": "empty_page", "product": "cloud", "path": "/msa/v1/cps/device", "after": 1}]
    )

    with pytest.raises(InvalidAnswer, match="members of group 38002: .*empty page at offset 50"):
        list(connect(mdm).iter_devices(DEFAULT, [IOS]))


def test_an_empty_search_page_in_another_space_stops_the_sync(mdm):
    mdm.set_faults([{"kind": "empty_page", "product": "cloud", "path": "/api/v1/device?"}])

    with pytest.raises(InvalidAnswer, match="group 38101: .*empty page at offset 0"):
        list(connect(mdm).iter_devices(MARKETING, ["38101"]))


def test_malformed_json_is_an_invalid_answer(mdm):
    mdm.set_faults([{"kind": "malformed", "product": "cloud", "path": "/api/v1/tenant"}])

    with pytest.raises(InvalidAnswer, match="not JSON"):
        connect(mdm).list_spaces()


# Errors and retries


def test_wrong_credentials_are_unauthorized(mdm):
    with pytest.raises(Unauthorized):
        connect(mdm, password="wrong").list_spaces()


def test_a_missing_cps_role_is_forbidden_naming_it(mdm):
    with pytest.raises(Forbidden) as raised:
        connect(mdm, "nocps@acme.example").list_groups(DEFAULT)

    assert raised.value.role == ROLE_CPS


def test_server_errors_are_retried(mdm):
    mdm.set_faults(
        [
            {
                "kind": "error",
                "status": 502,
                "product": "cloud",
                "path": "/msa/v1/cps/rule",
                "times": 1,
            }
        ]
    )

    assert connect(mdm).list_groups(DEFAULT)
    assert [e["status"] for e in requests_to(mdm, "/msa/v1/cps/rule")] == [502, 200]


def test_app_inventory_waits_out_a_429(mdm):
    mdm.set_faults(
        [
            {
                "kind": "throttle",
                "retry_after": 1,
                "product": "cloud",
                "path": "/msa/v1/cps/device/application",
                "times": 1,
            }
        ]
    )
    devices = active(mdm)[:3]

    started = time.monotonic()
    found = connect(mdm).fetch_apps(DEFAULT, [record_of(d) for d in devices])

    assert time.monotonic() - started >= 0.9
    assert set(found) == {str(d.id) for d in devices if d.apps}
    statuses = [e["status"] for e in requests_to(mdm, "/msa/v1/cps/device/application")]
    assert statuses == [429, 200]


def test_the_app_inventory_rate_limit_ends_in_a_transient_error_with_retry_after(mdm):
    control(mdm, "POST", "/config", {"appInventoryPerMinute": 1})
    try:
        devices = [record_of(d) for d in active(mdm)[:60]]
        with pytest.raises(Transient) as raised:
            connect(mdm, retries=1, max_retry_after=0.1).fetch_apps(DEFAULT, devices)
    finally:
        control(mdm, "POST", "/config", {"appInventoryPerMinute": 300})

    assert raised.value.status == 429
    assert raised.value.retry_after is not None and raised.value.retry_after > 1


# Apps, profiles, one device


def test_apps_are_fetched_by_guid_50_at_a_time_and_mapped_to_ids(mdm):
    devices = active(mdm)[:70]

    found = connect(mdm).fetch_apps(DEFAULT, [record_of(d) for d in devices])

    assert len(requests_to(mdm, "/msa/v1/cps/device/application")) == 2
    catalogue = mdm.fleet.apps
    for device in devices:
        assert [a.identifier for a in found.get(str(device.id), [])] == [
            catalogue[i].identifier for i in device.apps
        ]


def test_ios_profiles_come_from_cps_by_guid(mdm):
    devices = active(mdm, platform="IOS")[:4]

    found = connect(mdm).fetch_profiles(DEFAULT, [record_of(d) for d in devices])

    catalogue = mdm.fleet.profiles
    for device in devices:
        assert [p.identifier for p in found.get(str(device.id), [])] == [
            catalogue[i].identifier for i in device.profiles
        ]


def test_outside_the_default_space_apps_and_profiles_are_unavailable_not_empty(mdm):
    devices = [record_of(d) for d in active(mdm, space=100002)[:2]]

    with pytest.raises(NotFound):
        connect(mdm).fetch_apps(MARKETING, devices)
    with pytest.raises(NotFound):
        connect(mdm).fetch_profiles(MARKETING, devices)


@pytest.mark.parametrize("kind", ["mdm_id", "udid", "uuid"])
def test_one_device_is_found_with_its_groups(mdm, kind):
    device = active(mdm, platform="IOS")[0]
    identifier = {"mdm_id": str(device.id), "udid": device.udid, "uuid": device.guid}[kind]

    record = connect(mdm).find_device(DEFAULT, identifier, kind)

    groups = [str(g["id"]) for g in device_state(mdm, device.id)["groups"]]
    assert record.mdm_id == str(device.id)
    assert record.guid == device.guid
    assert record.groups == groups


def test_retired_unknown_and_foreign_devices_are_not_found(mdm):
    retired = next(d for d in mdm.fleet.cloud.devices if d.state != "ACTIVE")
    marketing = active(mdm, space=100002)[0]
    connector = connect(mdm)

    assert connector.find_device(DEFAULT, str(retired.id), "mdm_id") is None
    assert connector.find_device(DEFAULT, "99999999", "mdm_id") is None
    assert connector.find_device(DEFAULT, str(marketing.id), "mdm_id") is None
    assert connector.find_device(DEFAULT, "1' OR '1'='1", "udid") is None


# Actions


def test_setting_the_attribute_keeps_the_others_and_moves_the_device_into_the_group(mdm):
    device = next(
        d for d in active(mdm) if d.attrs and "costCenter" in d.attrs and "MTDThreat" not in d.attrs
    )
    cost_center = list(device.attrs["costCenter"])
    action = ActionSpec("attribute", attribute="MTDThreat")
    connector = connect(mdm)

    connector.apply_action(DEFAULT, action, str(device.id))

    after = device_state(mdm, device.id)
    assert after["attrs"] == {"costCenter": cost_center, "MTDThreat": ["1"]}
    assert int(THREAT_GROUP) in [g["id"] for g in after["groups"]]
    synced = [r for p in connector.iter_devices(DEFAULT, [THREAT_GROUP]) for r in p.records]
    assert str(device.id) in {r.mdm_id for r in synced}

    connector.undo_action(DEFAULT, action, str(device.id))

    undone = device_state(mdm, device.id)
    assert undone["attrs"] == {"costCenter": cost_center, "MTDThreat": ["0"]}
    assert int(THREAT_GROUP) not in [g["id"] for g in undone["groups"]]


def test_setting_the_attribute_on_a_device_without_attributes(mdm):
    device = next(d for d in active(mdm) if not d.attrs)

    connect(mdm).apply_action(
        DEFAULT, ActionSpec("attribute", attribute="MTDQuarantine"), str(device.id)
    )

    state = device_state(mdm, device.id)
    assert state["attrs"] == {"MTDQuarantine": ["1"]}
    assert 38013 in [g["id"] for g in state["groups"]]


def test_an_attribute_already_set_is_not_written_again(mdm):
    device = next(d for d in active(mdm) if not d.attrs and d.id % 2)
    action = ActionSpec("attribute", attribute="MTDThreat")
    connector = connect(mdm)

    connector.apply_action(DEFAULT, action, str(device.id))
    connector.apply_action(DEFAULT, action, str(device.id))

    puts = [
        e
        for e in requests_to(mdm, f"/api/v1/device/{device.id}/customattributes")
        if e["method"] == "PUT"
    ]
    assert len(puts) == 1


def test_an_attribute_on_an_unknown_device_is_not_found(mdm):
    with pytest.raises(NotFound):
        connect(mdm).apply_action(DEFAULT, ActionSpec("attribute", attribute="MTDThreat"), "424242")


def test_lock_locks_with_a_message_and_cannot_be_undone(mdm):
    device = active(mdm)[5]
    connector = connect(mdm)

    connector.apply_action(DEFAULT, ActionSpec("lock"), str(device.id))

    state = device_state(mdm, device.id)
    assert state["locked"] is True
    assert state["lock"]["message"] == LOCK_MESSAGE
    with pytest.raises(ActionRejected, match="a lock can't be undone"):
        connector.undo_action(DEFAULT, ActionSpec("lock"), str(device.id))


def test_locking_a_retired_device_is_rejected_with_the_mdm_reason(mdm):
    retired = next(d for d in mdm.fleet.cloud.devices if d.state == "RETIRED")

    with pytest.raises(ActionRejected, match="RETIRED"):
        connect(mdm).apply_action(DEFAULT, ActionSpec("lock"), str(retired.id))


def test_actions_without_the_role_are_forbidden(mdm):
    device = str(active(mdm)[7].id)
    readonly = connect(mdm, "readonly@acme.example")

    with pytest.raises(Forbidden) as attribute:
        readonly.apply_action(DEFAULT, ActionSpec("attribute", attribute="MTDThreat"), device)
    with pytest.raises(Forbidden) as lock:
        readonly.apply_action(DEFAULT, ActionSpec("lock"), device)

    assert (attribute.value.role, lock.value.role) == ("Device Management", "Device Actions")


def test_cloud_has_no_label_action(mdm):
    with pytest.raises(ActionRejected):
        connect(mdm).apply_action(DEFAULT, ActionSpec("label", name="Sales"), "1000001")


# Connection test


def test_a_good_connection_passes_every_read_check(mdm):
    report = connect(mdm).test_connection()

    assert report.ok, report
    passed = {c.name for c in report.checks if c.ok}
    assert passed == {
        "connect and list spaces",
        "list devices",
        "list device groups (CPS)",
        "read app inventory (CPS)",
    }
    version = next(c for c in report.checks if c.name == "MDM version")
    assert version.ok is None


def test_an_admin_without_cps_is_told_which_role(mdm):
    report = connect(mdm, "nocps@acme.example").test_connection()

    assert (report.ok, report.problem) == (False, "forbidden")
    assert report.message == f"the account lacks these roles: {ROLE_CPS}"


@pytest.mark.parametrize(
    ("url", "password", "options", "problem"),
    [
        ("ftp://na1.mobileiron.com", "secret", {}, "bad_url"),
        ("https://", "secret", {}, "bad_url"),
        ("emulator", "secret", {"allow_http": False}, "bad_url"),
        ("closed", "secret", {}, "unreachable"),
        ("emulator", "wrong", {}, "unauthorized"),
    ],
)
def test_connection_problems_are_told_apart(mdm, url, password, options, problem):
    if url == "emulator":
        url = mdm.base_url("cloud")
    elif url == "closed":
        url = f"http://127.0.0.1:{closed_port()}"
    options.setdefault("allow_http", True)
    options.setdefault("backoff", 0.01)

    report = get_connector("cloud", url, CLOUD_ADMIN[0], password, **options).test_connection()

    assert (report.ok, report.problem) == (False, problem)
    assert report.message
