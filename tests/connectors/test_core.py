"""The Core connector against the emulated Core, over real loopback HTTP."""

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
    SkippedRecord,
    Transient,
    Unauthorized,
)
from bastion.mdm.connectors.core import (
    ROLE_API,
    ROLE_APPS,
    CoreConnector,
)

from .conftest import (
    CORE_ADMIN,
    Answer,
    closed_port,
    control,
    fleet,
    requests_to,
    start,
)

GLOBAL = "1"


def connect(handle, username=CORE_ADMIN[0], password=CORE_ADMIN[1], **options) -> CoreConnector:
    options.setdefault("allow_http", True)
    options.setdefault("backoff", 0.01)
    return CoreConnector(handle.base_url("core"), username, password, **options)


def records_by_label(pages) -> dict[str, list]:
    found: dict[str, list] = {}
    for page in pages:
        found.setdefault(page.key, []).extend(page.records)
    return found


def active_device(handle, **wanted):
    return next(
        d
        for d in handle.fleet.core.devices
        if d.status == "ACTIVE"
        and d.space == 1
        and all(getattr(d, key) == value for key, value in wanted.items())
    )


# Listing


def test_spaces_are_listed_with_global_as_default(mdm):
    spaces = connect(mdm).list_spaces()

    assert [(s.id, s.name, s.is_default) for s in spaces] == [
        ("1", "Global", True),
        ("2", "EMEA", False),
    ]


def test_labels_say_which_can_be_action_targets(mdm):
    labels = {label.name: label for label in connect(mdm).list_groups(GLOBAL)}

    assert labels["All-Smartphones"].target_blocker == "system label"
    assert labels["BYOD"].target_blocker == "dynamic label (criteria)"
    assert labels["MTD-Quarantine"].target_blocker == ""
    assert labels["Sales"].device_count == 292
    assert requests_to(mdm, "/api/v2/labels/label_summary")[0]["path"].count("limit=200") == 1


# Sync


def test_every_device_of_each_selected_label_comes_back_page_by_page(mdm):
    status = {d.uuid: d.status for d in mdm.fleet.core.devices}

    found = records_by_label(connect(mdm).iter_devices(GLOBAL, ["1", "5", "7"]))

    for label in ("1", "5", "7"):
        members = control(mdm, "GET", f"/state/core/labels/{label}")["uuids"]
        records = found[label]
        fetched = {r.mdm_id for r in records if isinstance(r, DeviceRecord)}
        skipped = [r for r in records if isinstance(r, SkippedRecord)]
        assert fetched == {u for u in members if status[u] == "ACTIVE"}
        assert sorted(r.mdm_id for r in skipped) == sorted(
            u for u in members if status[u] != "ACTIVE"
        )
        assert {r.reason for r in skipped} <= {"status RETIRED", "status WIPED", "status PENDING"}
    ios_pages = [e for e in requests_to(mdm, "/api/v2/devices") if "labelId=1&" in e["path"]]
    assert len(ios_pages) == -(-len(found["1"]) // 200)


def test_a_device_in_two_selected_labels_names_both_in_priority_order(mdm):
    found = records_by_label(connect(mdm).iter_devices(GLOBAL, ["1", "5"]))
    sales = {r.mdm_id: r for r in found["5"] if isinstance(r, DeviceRecord)}

    ios_salespeople = [r for r in found["1"] if isinstance(r, DeviceRecord) and r.mdm_id in sales]

    assert ios_salespeople
    for record in ios_salespeople:
        assert record.groups == ["1"]
        assert sales[record.mdm_id].groups == ["1", "5"]


def test_records_carry_the_device_and_its_user(mdm):
    device = active_device(mdm, platform="iOS")
    label = str(next(lb.id for lb in mdm.fleet.core.labels if device.id in lb.members))

    records = [r for p in connect(mdm).iter_devices(GLOBAL, [label]) for r in p.records]
    record = next(r for r in records if r.mdm_id == device.uuid)

    assert (record.platform, record.os_version, record.model) == (
        "ios",
        device.os_version,
        device.model,
    )
    assert (record.serial, record.udid) == (device.serial, device.udid)
    assert record.user.uid == device.user.uid
    assert record.user.email == device.user.email.lower()
    assert record.last_checkin is not None and record.last_checkin.tzinfo is not None


def test_an_admin_with_a_gdpr_profile_gets_devices_without_identities(mdm):
    records = [r for p in connect(mdm, "gdpr").iter_devices(GLOBAL, ["5"]) for r in p.records]
    devices = [r for r in records if isinstance(r, DeviceRecord)]

    assert devices
    assert all(d.serial == "" and d.user is None for d in devices)


def test_a_repeated_page_stops_the_sync_naming_the_label(mdm):
    mdm.set_faults([{"kind": "repeat_page", "product": "core", "path": "/api/v2/devices"}])

    with pytest.raises(InvalidAnswer, match="label 1: .*repeats the previous page"):
        list(connect(mdm).iter_devices(GLOBAL, ["1"]))


def test_an_empty_page_while_more_are_promised_stops_the_sync(mdm):
    mdm.set_faults(
        [{"kind": "empty_page", "product": "core", "path": "/api/v2/devices", "after": 1}]
    )

    with pytest.raises(InvalidAnswer, match="label 1: .*empty page at offset 200"):
        list(connect(mdm).iter_devices(GLOBAL, ["1"]))


def test_more_pages_than_the_total_allows_stops_the_sync(scripted):
    page = {
        "totalCount": 2,
        "resultCount": 2,
        "hasMore": True,
        "results": [{"common.uuid": "a"}, {"common.uuid": "b"}],
    }
    scripted.then(Answer(body=page))
    connector = CoreConnector(scripted.url, "admin", "secret", allow_http=True)

    with pytest.raises(InvalidAnswer, match="label 9: .*totalCount is 2"):
        list(connector.iter_devices(GLOBAL, ["9"]))


def test_a_malformed_page_is_an_invalid_answer(mdm):
    mdm.set_faults([{"kind": "malformed", "product": "core", "path": "/api/v2/devices"}])

    with pytest.raises(InvalidAnswer, match="not JSON"):
        list(connect(mdm).iter_devices(GLOBAL, ["5"]))


# Errors and retries


def test_wrong_credentials_are_unauthorized(mdm):
    with pytest.raises(Unauthorized):
        connect(mdm, password="wrong").list_spaces()


def test_credentials_revoked_mid_sync_stop_it(mdm):
    mdm.set_faults([{"kind": "expire_credentials", "product": "core", "after": 1}])

    with pytest.raises(Unauthorized):
        list(connect(mdm).iter_devices(GLOBAL, ["1"]))


def test_a_missing_role_is_forbidden_naming_the_role(mdm):
    device = DeviceRecord(mdm_id=active_device(mdm).uuid, platform="ios")

    with pytest.raises(Forbidden) as raised:
        connect(mdm, "noapps").fetch_apps(GLOBAL, [device])

    assert raised.value.role == ROLE_APPS
    with pytest.raises(Forbidden) as raised:
        connect(mdm, "norole").list_spaces()
    assert raised.value.role == ROLE_API


def test_server_errors_are_retried(mdm):
    mdm.set_faults(
        [{"kind": "error", "status": 503, "product": "core", "path": "label_summary", "times": 2}]
    )

    labels = connect(mdm).list_groups(GLOBAL)

    assert labels
    assert [e["status"] for e in requests_to(mdm, "/api/v2/labels/label_summary")] == [
        503,
        503,
        200,
    ]


def test_lasting_server_errors_give_up_after_four_tries(mdm):
    mdm.set_faults([{"kind": "error", "status": 500, "product": "core"}])

    with pytest.raises(Transient):
        connect(mdm).list_spaces()

    assert len(requests_to(mdm, "/api/v2/device_spaces/mine")) == 4


def test_a_throttled_call_waits_for_retry_after(mdm):
    mdm.set_faults(
        [{"kind": "throttle", "retry_after": 1, "product": "core", "path": "spaces", "times": 1}]
    )

    started = time.monotonic()
    spaces = connect(mdm).list_spaces()
    waited = time.monotonic() - started

    assert spaces
    assert waited >= 0.9
    assert [e["status"] for e in requests_to(mdm, "/api/v2/device_spaces/mine")] == [429, 200]


def test_a_hanging_mdm_times_out(mdm):
    mdm.set_faults([{"kind": "hang", "seconds": 3, "product": "core"}])

    with pytest.raises(Transient):
        connect(mdm, timeout=0.3, retries=0).list_spaces()


# Apps, profiles, one device


def test_apps_are_fetched_25_devices_at_a_time(mdm):
    devices = [d for d in mdm.fleet.core.devices if d.status == "ACTIVE" and d.space == 1][:60]
    records = [DeviceRecord(mdm_id=d.uuid, platform="ios") for d in devices]

    found = connect(mdm).fetch_apps(GLOBAL, records)

    assert len(requests_to(mdm, "/api/v2/devices/appinventory")) == 3
    catalogue = mdm.fleet.apps
    for device in devices:
        assert [a.identifier for a in found.get(device.uuid, [])] == [
            catalogue[i].identifier for i in device.apps
        ]


def test_ios_profiles_are_read_by_udid_and_mapped_back(mdm):
    devices = [d for d in mdm.fleet.core.devices if d.status == "ACTIVE" and d.platform == "iOS"]
    records = [DeviceRecord(mdm_id=d.uuid, platform="ios", udid=d.udid) for d in devices[:5]]

    found = connect(mdm).fetch_profiles(GLOBAL, records)

    catalogue = mdm.fleet.profiles
    for device in devices[:5]:
        assert [(p.identifier, p.managed) for p in found.get(device.uuid, [])] == [
            (catalogue[i].identifier, catalogue[i].managed) for i in device.profiles
        ]


def test_a_core_without_cps_has_no_profiles():
    small = fleet(40, seed=5)
    small.core.cps = False
    handle = start(small)
    try:
        device = next(d for d in small.core.devices if d.platform == "iOS")
        record = DeviceRecord(mdm_id=device.uuid, platform="ios", udid=device.udid)

        with pytest.raises(NotFound):
            connect(handle).fetch_profiles(GLOBAL, [record])
    finally:
        handle.stop()


def test_one_device_is_found_by_uuid_with_its_labels(mdm):
    device = active_device(mdm, platform="iOS")

    record = connect(mdm).find_device(GLOBAL, device.uuid, "uuid")

    labels = control(mdm, "GET", f"/state/core/devices/{device.uuid}")["labels"]
    assert record.mdm_id == device.uuid
    assert record.groups == [str(label["id"]) for label in labels]


def test_one_device_is_found_by_udid(mdm):
    device = active_device(mdm, platform="iOS")

    record = connect(mdm).find_device(GLOBAL, device.udid, "udid")

    assert record.mdm_id == device.uuid


def test_unknown_retired_or_odd_identifiers_find_nothing(mdm):
    retired = next(d for d in mdm.fleet.core.devices if d.status == "RETIRED")
    connector = connect(mdm)

    assert connector.find_device(GLOBAL, "00000000-0000-4000-8000-000000000000", "uuid") is None
    assert connector.find_device(GLOBAL, retired.uuid, "uuid") is None
    assert connector.find_device(GLOBAL, 'x" OR common.uuid="y', "uuid") is None


# Actions


@pytest.mark.parametrize("name", ["R&D / Lab+Test", "MTD High Risk", "Threat: a+b&c/d %20?#"])
def test_label_names_with_odd_characters_are_applied_and_removed(mdm, name):
    if name.startswith("Threat"):
        control(mdm, "POST", "/fleet/core/labels", {"name": name})
    device = active_device(mdm, platform="Android")
    action = ActionSpec("label", name=name)
    connector = connect(mdm)

    connector.apply_action(GLOBAL, action, device.uuid)
    applied = control(mdm, "GET", f"/state/core/devices/{device.uuid}")["labels"]
    connector.undo_action(GLOBAL, action, device.uuid)
    removed = control(mdm, "GET", f"/state/core/devices/{device.uuid}")["labels"]

    assert name in [label["name"] for label in applied]
    assert name not in [label["name"] for label in removed]


def test_an_unknown_label_is_not_found(mdm):
    with pytest.raises(NotFound, match="does not exist"):
        connect(mdm).apply_action(
            GLOBAL, ActionSpec("label", name="No Such Label"), active_device(mdm).uuid
        )


def test_a_dynamic_label_is_rejected(mdm):
    with pytest.raises(ActionRejected, match="dynamic"):
        connect(mdm).apply_action(GLOBAL, ActionSpec("label", name="BYOD"), active_device(mdm).uuid)


def test_an_unknown_device_is_not_found(mdm):
    with pytest.raises(NotFound):
        connect(mdm).apply_action(
            GLOBAL,
            ActionSpec("label", name="MTD-Quarantine"),
            "00000000-dead-4000-8000-000000000000",
        )


def test_core_has_no_attribute_or_lock_actions(mdm):
    with pytest.raises(ActionRejected):
        connect(mdm).apply_action(GLOBAL, ActionSpec("lock"), active_device(mdm).uuid)


def test_applying_a_label_without_the_role_is_forbidden():
    small = fleet(20, seed=3)
    from emulators.mobileiron.fleet import Account

    small.core.accounts.append(Account("viewer", "secret", frozenset({"API", "VIEW_DEVICE"})))
    handle = start(small)
    try:
        with pytest.raises(Forbidden) as raised:
            connect(handle, "viewer").apply_action(
                GLOBAL, ActionSpec("label", name="Sales"), small.core.devices[0].uuid
            )
        assert raised.value.role == "Apply and remove device label"
    finally:
        handle.stop()


# Connection test


def test_a_good_connection_passes_every_read_check(mdm):
    report = connect(mdm).test_connection()

    assert report.ok, report
    assert report.version.startswith("VSP 11.8")
    assert report.warnings == []
    passed = {c.name for c in report.checks if c.ok}
    assert {"connect and sign in", "list labels", "list devices", "read app inventory"} <= passed
    assert not [c for c in report.checks if c.ok is False]
    apply = next(c for c in report.checks if c.name == "apply and remove labels")
    assert (apply.ok, apply.detail) == (None, "not checked: would change a device")


def test_an_old_core_is_warned_about():
    small = fleet(20, seed=2)
    small.core.vsp_version = "VSP 9.5.0.0 Build 40 "
    handle = start(small)
    try:
        report = connect(handle).test_connection()
    finally:
        handle.stop()

    assert report.ok
    assert report.warnings == [
        "Core 9.5.0.0 is older than 9.6.0.1, the oldest release MobileIron Threat Defense supports"
    ]


def test_an_unreadable_version_is_warned_about():
    small = fleet(20, seed=2)
    small.core.vsp_version = ""
    handle = start(small)
    try:
        report = connect(handle).test_connection()
    finally:
        handle.stop()

    assert report.ok
    assert "could not be read" in report.warnings[0]


@pytest.mark.parametrize(
    ("url", "options", "problem"),
    [
        ("ftp://core.example.com", {}, "bad_url"),
        ("core.example.com", {}, "bad_url"),
        ("https://admin:pw@core.example.com", {}, "bad_url"),
        (None, {"allow_http": False}, "bad_url"),
        ("closed", {}, "unreachable"),
    ],
)
def test_connection_problems_are_told_apart(mdm, url, options, problem):
    if url is None:
        url = mdm.base_url("core")
    elif url == "closed":
        url = f"http://127.0.0.1:{closed_port()}"
    options.setdefault("allow_http", True)
    options.setdefault("backoff", 0.01)

    report = get_connector("core", url, "admin", "secret", **options).test_connection()

    assert (report.ok, report.problem) == (False, problem)
    assert report.message


def test_bad_credentials_are_reported(mdm):
    report = connect(mdm, password="nope").test_connection()

    assert (report.ok, report.problem) == (False, "unauthorized")
    assert [c.name for c in report.checks][0] == "connect and sign in"


def test_an_admin_without_the_api_role_is_told_which_role(mdm):
    report = connect(mdm, "norole").test_connection()

    assert (report.ok, report.problem) == (False, "forbidden")
    assert report.message == f"the account lacks these roles: {ROLE_API}"


def test_an_admin_without_app_rights_is_told_which_role(mdm):
    report = connect(mdm, "noapps").test_connection()

    assert (report.ok, report.problem) == (False, "forbidden")
    failed = [c for c in report.checks if c.ok is False]
    assert [(c.name, c.role) for c in failed] == [("read app inventory", ROLE_APPS)]


def test_an_untrusted_certificate_is_a_tls_problem(tls_server):
    tls_server.then(Answer(body={"results": {"vspVersion": "VSP 12.0.0.0"}}))

    report = CoreConnector(tls_server.url, "admin", "secret").test_connection()

    assert (report.ok, report.problem) == (False, "tls")


def test_a_missing_cps_role_only_warns_since_the_sync_goes_on_without_profiles():
    from emulators.mobileiron.fleet import CORE_ROLES, Account

    small = fleet(30, seed=4)
    # The connection test asks about the first device; make it an active iPhone.
    first = small.core.devices[0]
    iphone = next(d for d in small.core.devices if d.platform == "iOS" and d.status == "ACTIVE")
    first.id, iphone.id = iphone.id, first.id
    small.core.accounts.append(Account("nocps", "secret", frozenset(CORE_ROLES) - {"CPS"}))
    handle = start(small)
    try:
        report = connect(handle, "nocps").test_connection()
    finally:
        handle.stop()

    assert report.ok, report
    profiles = next(c for c in report.checks if c.name == "read iOS profiles")
    assert (profiles.ok, profiles.role) == (None, "Common Platform Services (CPS)")
    assert report.warnings == [
        "iOS profiles won't be read until the account has the role Common Platform Services (CPS)"
    ]
