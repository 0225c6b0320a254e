"""The /_emulator control API: request log, state and fleet mutations."""

from urllib.parse import quote

SPACE = {"adminDeviceSpaceId": 1}


def label_uuids(core, label_id):
    page = core.get(
        "/api/v2/devices",
        params={**SPACE, "labelId": label_id, "limit": 500, "fields": "common.uuid"},
    ).json()
    return {r["common.uuid"] for r in page["results"]}


def by_serial(core, serial):
    page = core.get(
        "/api/v2/devices",
        params={
            **SPACE,
            "fields": "common.uuid,common.status",
            "query": f'common.SerialNumber="{serial}"',
        },
    ).json()
    return page["results"]


def test_health(control):
    health = control.get("/health").json()
    assert health["ok"] is True
    assert health["products"] == {"core": "/core", "cloud": "/cloud"}
    assert health["devices"] == {"core": 80, "cloud": 80}


def test_request_log_and_reset(core, cloud, control):
    core.get("/api/v2/ping")
    cloud.get("/api/v1/device/424242")
    log = control.get("/requests").json()
    assert log["count"] == 2
    assert [(e["product"], e["method"], e["path"], e["status"]) for e in log["entries"]] == [
        ("core", "GET", "/api/v2/ping", 200),
        ("cloud", "GET", "/api/v1/device/424242", 404),
    ]
    assert (
        control.get("/requests", params={"product": "cloud"}).json()["entries"][0]["status"] == 404
    )
    control.post("/reset-log")
    assert control.get("/requests").json() == {"count": 0, "entries": []}


def test_control_api_needs_no_mdm_auth_and_reports_errors(control):
    assert control.get("/state/core/devices/nope").status_code == 404
    assert control.get("/nowhere").status_code == 404
    assert control.put("/faults").status_code == 405


def test_move_a_device_into_and_out_of_a_label(core, control, fleet):
    label = next(lb for lb in fleet.core.labels if lb.name == "Executives")
    device = next(d for d in fleet.core.devices if d.id not in label.members)
    control.post(f"/fleet/core/labels/{label.id}/members", json={"add": [device.uuid]})
    assert device.uuid in label_uuids(core, label.id)
    state = control.get(f"/state/core/labels/{label.id}").json()
    assert device.uuid in state["uuids"] and device.id in state["members"]

    control.post(f"/fleet/core/labels/{label.id}/members", json={"remove": [device.uuid]})
    assert device.uuid not in label_uuids(core, label.id)


def test_retire_and_change_os_version(core, control, fleet):
    device = next(d for d in fleet.core.devices if d.status == "ACTIVE")
    control.post(
        f"/fleet/core/devices/{device.uuid}", json={"status": "RETIRED", "osVersion": "18.5"}
    )
    record = core.get(
        "/api/v2/devices",
        params={
            **SPACE,
            "fields": "common.status,common.os_version",
            "query": f'common.uuid="{device.uuid}"',
        },
    ).json()["results"][0]
    assert record == {"common.status": "RETIRED", "common.os_version": "18.5"}
    assert control.post(f"/fleet/core/devices/{device.uuid}", json={"uuid": "x"}).status_code == 400


def test_dynamic_label_follows_device_changes(core, control, fleet):
    created = control.post(
        "/fleet/core/labels",
        json={"name": "iOS 18.5", "static": False, "criteria": 'common.os_version = "18.5"'},
    ).json()
    device = next(d for d in fleet.core.devices if d.os_version != "18.5")
    assert device.uuid not in label_uuids(core, created["id"])
    control.post(f"/fleet/core/devices/{device.uuid}", json={"osVersion": "18.5"})
    assert device.uuid in label_uuids(core, created["id"])


def test_reenrol_keeps_serial_and_udid(core, control, fleet):
    device = next(d for d in fleet.core.devices if d.platform == "iOS" and d.status == "ACTIVE")
    new = control.post(f"/fleet/core/devices/{device.uuid}/reenrol", json={}).json()
    assert new["uuid"] != device.uuid and new["serialNumber"] == device.serial
    assert new["udid"] == device.udid
    rows = by_serial(core, device.serial)
    assert {(r["common.uuid"], r["common.status"]) for r in rows} == {
        (device.uuid, "RETIRED"),
        (new["uuid"], "ACTIVE"),
    }
    assert new["uuid"] in label_uuids(core, -1)
    profiles = core.post(
        "/msa/v1/cps/device/profile",
        json={"identifiers": [device.udid], "identifierType": "MDM_IDENTIFIER"},
    )
    assert len(profiles.json()) == 1


def test_rename_and_delete_a_label(core, control, fleet):
    device = fleet.core.devices[0]
    label = next(lb for lb in fleet.core.labels if lb.name == "MTD High Risk")
    control.post(f"/fleet/core/labels/{label.id}/rename", json={"name": "MTD Critical"})
    old = core.put(
        f"/api/v2/devices/labels/{quote('MTD High Risk')}/add",
        params=SPACE,
        json={"deviceUuids": [device.uuid]},
    ).json()
    assert old["successful"] is False
    new = core.put(
        f"/api/v2/devices/labels/{quote('MTD Critical')}/add",
        params=SPACE,
        json={"deviceUuids": [device.uuid]},
    ).json()
    assert new["successful"] is True

    control.post(f"/fleet/core/labels/{label.id}/delete")
    names = {
        lb["name"]
        for lb in core.get("/api/v2/labels/label_summary", params=SPACE).json()["results"]
    }
    assert "MTD Critical" not in names
    gone = core.get(
        "/api/v2/devices", params={**SPACE, "labelId": label.id, "fields": "common.uuid"}
    )
    assert gone.status_code == 400


def test_cloud_group_membership_and_device_changes(cloud, control, fleet):
    group_id = 38011  # Executives, static
    device = next(d for d in fleet.cloud.devices if d.space == 100001 and d.state == "ACTIVE")
    control.post(f"/fleet/cloud/groups/{group_id}/members", json={"add": [device.id]})
    state = control.get(f"/state/cloud/groups/{group_id}").json()
    assert device.id in state["members"] and device.guid in state["guids"]
    detail = cloud.get(f"/api/v1/device/{device.id}").json()["result"]
    assert group_id in {g["id"] for g in detail["groups"]}

    # Taking a device out of a rule group sticks until it is added back.
    control.post("/fleet/cloud/groups/38001/members", json={"remove": [device.id]})
    assert device.id not in control.get("/state/cloud/groups/38001").json()["members"]

    control.post(
        f"/fleet/cloud/devices/{device.id}",
        json={"registrationState": "RETIRED", "platformVersion": "18.5"},
    )
    view = control.get(f"/state/cloud/devices/{device.guid}").json()
    assert view["registrationState"] == "RETIRED" and view["platformVersion"] == "18.5"
    active = cloud.get(
        "/api/v1/device",
        params={"fq": f"registrationState=ACTIVE AND serialNumber={device.serial}"},
    )
    assert active.json()["result"]["totalCount"] == 0


def test_cloud_reenrol(cloud, control, fleet):
    device = next(d for d in fleet.cloud.devices if d.udid and d.space == 100001)
    new = control.post(f"/fleet/cloud/devices/{device.id}/reenrol", json={}).json()
    assert new["id"] != device.id and new["udid"] == device.udid
    found = cloud.get("/api/v1/device", params={"fq": f"udid={device.udid}"}).json()
    states = {(d["id"], d["registrationState"]) for d in found["result"]["searchResults"]}
    assert states == {(device.id, "RETIRED"), (new["id"], "ACTIVE")}
