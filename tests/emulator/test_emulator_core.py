"""MobileIron Core emulator: the calls of docs/mobileiron-api.md."""

from urllib.parse import quote

import httpx

FIELDS = (
    "common.uuid,common.id,common.status,common.platform,common.os_version,common.model,"
    "common.manufacturer,common.SerialNumber,ios.iPhone UDID,common.last_connected_at,"
    "common.registration_date,user.user_id,user.email_address,user.display_name,"
    "user.first_name,user.last_name"
)
SPACE = {"adminDeviceSpaceId": 1}


def devices(core, **params):
    response = core.get("/api/v2/devices", params={**SPACE, "fields": FIELDS, **params})
    assert response.status_code == 200, response.text
    return response.json()


def all_in_label(core, label_id, limit=50):
    found, offset = [], 0
    while True:
        page = devices(core, labelId=label_id, limit=limit, offset=offset)
        found += page["results"]
        offset += limit
        if not page["hasMore"]:
            return found


def test_ping_and_spaces(core):
    ping = core.get("/api/v2/ping").json()
    assert ping["results"]["apiVersion"] == 2
    assert ping["results"]["vspVersion"].startswith("VSP ")

    spaces = core.get("/api/v2/device_spaces/mine").json()
    assert spaces["results"][0] == {"id": 1, "name": "Global"}
    assert spaces["totalCount"] == len(spaces["results"]) == 2
    assert spaces["hasMore"] is False


def test_wrong_credentials_answer_401(emulator):
    url = emulator.base_url("core") + "/api/v2/ping"
    for auth in (("admin", "wrong"), ("nobody", "secret"), None):
        response = httpx.get(url, auth=auth)
        assert response.status_code == 401
        assert response.json()["messages"][0]["messageKey"].endswith("401")
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_missing_role_answers_403_with_core_body(emulator):
    base = emulator.base_url("core")
    response = httpx.get(base + "/api/v2/ping", auth=("norole", "secret"))
    assert response.status_code == 403
    message = response.json()["messages"][0]
    assert message["type"] == "Error"
    assert message["messageKey"] == "com.mobileiron.vsp.messages.http.403"
    assert "API" in message["localizedMessage"]

    # Without VIEW_APPS devices are readable but the app inventory is not.
    listing = httpx.get(
        base + "/api/v2/devices",
        auth=("noapps", "secret"),
        params={**SPACE, "labelId": -1, "fields": "common.uuid"},
    )
    assert listing.status_code == 200
    uuid = listing.json()["results"][0]["common.uuid"]
    apps = httpx.get(
        base + "/api/v2/devices/appinventory",
        auth=("noapps", "secret"),
        params={**SPACE, "deviceUuids": uuid},
    )
    assert apps.status_code == 403


def test_space_id_is_required(core):
    assert core.get("/api/v2/labels/label_summary").status_code == 400
    assert (
        core.get("/api/v2/labels/label_summary", params={"adminDeviceSpaceId": 99}).status_code
        == 400
    )


def test_label_summary_paging_and_limit(core):
    assert (
        core.get("/api/v2/labels/label_summary", params={**SPACE, "limit": 201}).status_code == 400
    )

    full = core.get("/api/v2/labels/label_summary", params={**SPACE, "limit": 200}).json()
    assert full["hasMore"] is False
    assert full["totalCount"] == full["resultCount"] == len(full["results"])
    first = full["results"][0]
    assert first["id"] == -1 and first["name"] == "All-Smartphones"
    assert first["rowType"] == "SYSTEM"
    assert set(first) == {
        "id",
        "name",
        "description",
        "isStatic",
        "criteria",
        "deviceCount",
        "deviceSpaceId",
        "deviceSpaceName",
        "deviceSpacePath",
        "rowType",
    }
    names = {lb["name"]: lb for lb in full["results"]}
    assert names["MTD-Quarantine"]["isStatic"] is True
    assert names["BYOD"]["isStatic"] is False

    paged, offset = [], 0
    while True:
        page = core.get(
            "/api/v2/labels/label_summary", params={**SPACE, "limit": 4, "offset": offset}
        ).json()
        paged += page["results"]
        offset += 4
        if not page["hasMore"]:
            break
    assert [lb["id"] for lb in paged] == [lb["id"] for lb in full["results"]]


def test_devices_paging_has_more_and_counts(core, fleet):
    first = devices(core, labelId=-1, limit=7, offset=0)
    assert first["totalCount"] == len(fleet.core.devices)
    assert first["resultCount"] == 7 and first["hasMore"] is True

    found = all_in_label(core, -1, limit=7)
    uuids = [d["common.uuid"] for d in found]
    assert len(uuids) == len(set(uuids)) == len(fleet.core.devices)
    ids = [d["common.id"] for d in found]
    assert ids == sorted(ids)

    last = devices(core, labelId=-1, limit=7, offset=77)
    assert last["resultCount"] == 3 and last["hasMore"] is False


def test_devices_limits_and_fields(core):
    response = core.get(
        "/api/v2/devices", params={**SPACE, "labelId": -1, "limit": 501, "fields": "common.uuid"}
    )
    assert response.status_code == 400
    assert core.get("/api/v2/devices", params={**SPACE, "labelId": -1}).status_code == 400
    assert (
        core.get(
            "/api/v2/devices", params={**SPACE, "labelId": 424242, "fields": "common.uuid"}
        ).status_code
        == 400
    )

    page = core.get(
        "/api/v2/devices",
        params={
            **SPACE,
            "labelId": -1,
            "limit": 500,
            "fields": "common.uuid,common.platform,no.such",
        },
    ).json()
    assert page["resultCount"] == 80 and page["hasMore"] is False
    for record in page["results"]:
        assert set(record) == {"common.uuid", "common.platform", "no.such"}
        assert record["no.such"] == ""
        assert record["common.platform"] in ("iOS", "Android")


def test_device_record_shape(core, fleet):
    records = devices(core, labelId=-1, limit=500)["results"]
    ios = next(r for r in records if r["common.platform"] == "iOS")
    android = next(r for r in records if r["common.platform"] == "Android")
    assert set(ios) == set(FIELDS.split(","))
    assert len(ios["ios.iPhone UDID"]) > 20
    assert android["ios.iPhone UDID"] == ""
    assert ios["common.manufacturer"] == "Apple"
    assert ios["common.last_connected_at"].endswith("Z")
    assert ios["user.email_address"].endswith("@acme.example")
    assert isinstance(ios["common.id"], int)


def test_non_active_devices_are_returned(core, fleet):
    statuses = {r["common.status"] for r in all_in_label(core, -1, limit=100)}
    assert "ACTIVE" in statuses
    assert statuses & {"RETIRED", "WIPED", "PENDING"}


def test_query_by_uuid_serial_and_udid(core, fleet):
    device = next(d for d in fleet.core.devices if d.platform == "iOS")
    for query in (
        f'common.uuid="{device.uuid}"',
        f"common.uuid={device.uuid}",
        f'"common.uuid" = "{device.uuid}"',
        f'common.SerialNumber="{device.serial}"',
        f'"common.SerialNumber"="{device.serial}"',
        f'"ios.iPhone UDID"="{device.udid}"',
        f'common.status = "{device.status}" AND common.uuid = "{device.uuid}"',
    ):
        page = devices(core, query=query)
        assert [r["common.uuid"] for r in page["results"]] == [device.uuid], query
    assert devices(core, query='common.uuid="nope"')["results"] == []
    assert (
        core.get(
            "/api/v2/devices",
            params={**SPACE, "fields": "common.uuid", "query": "common.uuid = 1 OR x = 2"},
        ).status_code
        == 400
    )


def test_query_combined_with_label(core, fleet):
    sales = next(lb for lb in fleet.core.labels if lb.name == "Sales")
    member = next(d for d in fleet.core.devices if d.id in sales.members)
    outsider = next(d for d in fleet.core.devices if d.id not in sales.members)
    hit = devices(core, labelId=sales.id, query=f'common.uuid="{member.uuid}"')
    miss = devices(core, labelId=sales.id, query=f'common.uuid="{outsider.uuid}"')
    assert hit["totalCount"] == 1 and miss["totalCount"] == 0


def test_app_inventory(core, fleet):
    uuids = [d.uuid for d in fleet.core.devices[:25]]
    response = core.get(
        "/api/v2/devices/appinventory", params={**SPACE, "deviceUuids": ",".join(uuids)}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["deviceUuid"] for r in results] == uuids
    app = results[0]["appInventory"][0]
    assert set(app) == {"name", "identifier", "version", "platformType"}

    too_many = [d.uuid for d in fleet.core.devices[:26]]
    response = core.get(
        "/api/v2/devices/appinventory", params={**SPACE, "deviceUuids": ",".join(too_many)}
    )
    assert response.status_code == 400


def test_labels_of_one_device(core, fleet):
    device = fleet.core.devices[0]
    response = core.get(f"/api/v2/devices/{device.uuid}/labels", params=SPACE)
    labels = response.json()["results"]
    names = {lb["name"] for lb in labels}
    assert "All-Smartphones" in names
    assert ("iOS" if device.platform == "iOS" else "Android") in names
    assert all(set(lb) == {"id", "name", "staticLabel"} for lb in labels)
    assert core.get("/api/v2/devices/not-a-device/labels", params=SPACE).status_code == 404


def test_apply_label_makes_device_a_member(core, fleet, control):
    device = fleet.core.devices[3]
    label = next(lb for lb in fleet.core.labels if lb.name == "MTD-Quarantine")
    assert device.uuid not in {r["common.uuid"] for r in all_in_label(core, label.id)}

    response = core.put(
        "/api/v2/devices/labels/MTD-Quarantine/add",
        params=SPACE,
        json={"deviceUuids": [device.uuid]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["successful"] is True
    record = body["results"]["records"][0]
    assert record["label"] == "MTD-Quarantine"
    assert record["device"]["uuid"] == device.uuid and record["device"]["failureCode"] is None

    assert device.uuid in {r["common.uuid"] for r in all_in_label(core, label.id)}
    own = core.get(f"/api/v2/devices/{device.uuid}/labels", params=SPACE).json()["results"]
    assert {"id": str(label.id), "name": "MTD-Quarantine", "staticLabel": True} in own
    state = control.get(f"/state/core/devices/{device.uuid}").json()
    assert "MTD-Quarantine" in {lb["name"] for lb in state["labels"]}
    summary = core.get("/api/v2/labels/label_summary", params=SPACE).json()["results"]
    assert next(lb for lb in summary if lb["id"] == label.id)["deviceCount"] == 1

    response = core.put(
        "/api/v2/devices/labels/MTD-Quarantine/remove",
        params=SPACE,
        json={"deviceUuids": [device.uuid]},
    )
    assert response.json()["successful"] is True
    assert device.uuid not in {r["common.uuid"] for r in all_in_label(core, label.id)}


def test_label_names_with_special_characters(core, fleet):
    device = fleet.core.devices[5]
    for name in ("R&D / Lab+Test", "MTD High Risk"):
        path = f"/api/v2/devices/labels/{quote(name, safe='')}/add"
        body = core.put(path, params=SPACE, json={"deviceUuids": [device.uuid]}).json()
        assert body["successful"] is True, body
        assert body["results"]["records"][0]["label"] == name
    names = {
        lb["name"]
        for lb in core.get(f"/api/v2/devices/{device.uuid}/labels", params=SPACE).json()["results"]
    }
    assert {"R&D / Lab+Test", "MTD High Risk"} <= names


def test_apply_unknown_or_dynamic_label_fails_with_http_200(core, fleet):
    device = fleet.core.devices[0]
    unknown = core.put(
        "/api/v2/devices/labels/No%20Such%20Label/add",
        params=SPACE,
        json={"deviceUuids": [device.uuid]},
    )
    assert unknown.status_code == 200
    assert unknown.json()["successful"] is False
    assert unknown.json()["results"]["records"][0]["device"]["failureCode"] == "LABEL_NOT_FOUND"

    dynamic = core.put(
        "/api/v2/devices/labels/BYOD/add", params=SPACE, json={"deviceUuids": [device.uuid]}
    )
    assert dynamic.status_code == 200
    assert dynamic.json()["successful"] is False

    missing = core.put(
        "/api/v2/devices/labels/MTD-Quarantine/add",
        params=SPACE,
        json={"deviceUuids": ["00000000-0000-0000-0000-000000000000"]},
    )
    assert missing.json()["results"]["records"][0]["device"]["failureCode"] == "DEVICE_NOT_FOUND"

    bad = core.put("/api/v2/devices/labels/MTD-Quarantine/add", params=SPACE, json={})
    assert bad.status_code == 400


def test_cps_profile_inventory(core, fleet):
    device = next(d for d in fleet.core.devices if d.platform == "iOS")
    response = core.post(
        "/msa/v1/cps/device/profile",
        json={"identifiers": [device.udid], "identifierType": "MDM_IDENTIFIER"},
    )
    assert response.status_code == 200
    (entry,) = response.json()
    assert entry["deviceMdmId"] == device.udid
    profile = entry["profiles"][0]
    assert set(profile) == {
        "identifier",
        "displayName",
        "organization",
        "managed",
        "uuid",
        "version",
        "description",
        "encrypted",
        "hasRemovalPasscode",
        "removalDisallowed",
    }
    assert any(p["managed"] for p in entry["profiles"])


def test_some_ios_devices_have_unmanaged_profiles(core, fleet):
    udids = [d.udid for d in fleet.core.devices if d.platform == "iOS"][:50]
    entries = core.post(
        "/msa/v1/cps/device/profile",
        json={"identifiers": udids, "identifierType": "MDM_IDENTIFIER"},
    ).json()
    unmanaged = [p["identifier"] for e in entries for p in e["profiles"] if not p["managed"]]
    assert unmanaged
    assert len(unmanaged) > len(set(unmanaged))  # some are shared by several devices


def test_gdpr_admin_sees_obfuscated_values(emulator):
    response = httpx.get(
        emulator.base_url("core") + "/api/v2/devices",
        auth=("gdpr", "secret"),
        params={
            **SPACE,
            "labelId": -1,
            "limit": 1,
            "fields": "common.uuid,user.email_address,common.SerialNumber",
        },
    )
    record = response.json()["results"][0]
    assert record["user.email_address"] == "*****"
    assert record["common.SerialNumber"] == "*****"
    assert record["common.uuid"] != "*****"


def test_second_space_sees_only_its_devices(core, fleet):
    emea = {d.uuid for d in fleet.core.devices if d.space == 2}
    page = core.get(
        "/api/v2/devices",
        params={"adminDeviceSpaceId": 2, "labelId": -1, "limit": 500, "fields": "common.uuid"},
    ).json()
    assert {r["common.uuid"] for r in page["results"]} == emea
    labels = core.get("/api/v2/labels/label_summary", params={"adminDeviceSpaceId": 2}).json()[
        "results"
    ]
    assert "EMEA Field" in {lb["name"] for lb in labels}
