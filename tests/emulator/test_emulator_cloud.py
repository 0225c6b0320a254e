"""MobileIron Cloud emulator: /api/v1 and the CPS calls of docs/mobileiron-api.md."""

import httpx

DEFAULT = 100001
MARKETING = 100002
MTD_THREAT_GROUP = 38012
IOS_GROUP = 38002

# samples/cloud/error_400_rows_over_500.json
ROWS_ERROR = {
    "errors": {
        "globalErrors": None,
        "fieldErrors": [{"code": "Range", "message": "must be between 1 and 500", "field": "rows"}],
    },
    "result": None,
}
SEARCH_KEYS = {
    "id",
    "guid",
    "deviceModel",
    "deviceName",
    "platformType",
    "platformVersion",
    "registrationState",
    "lastCheckin",
    "displayName",
    "firstName",
    "lastName",
    "uid",
    "emailAddress",
    "manufacturer",
    "imei",
    "wifiMacAddress",
    "serialNumber",
    "udid",
    "prettyModel",
    "dmPartitionId",
    "dmPartitionName",
    "customAttributes",
}


def search(cloud, **params):
    response = cloud.get("/api/v1/device", params={"dmPartitionId": DEFAULT, **params})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def search_all(cloud, rows=9, **params):
    found, start = [], 0
    while True:
        page = search(cloud, rows=rows, start=start, **params)
        found += page["searchResults"]
        start += rows
        if start >= page["totalCount"]:
            return found


def cps_members(cloud, rule_id):
    found, offset = [], 0
    while True:
        page = cloud.get(
            "/msa/v1/cps/device", params={"ruleId": rule_id, "offset": offset, "limit": 50}
        ).json()
        found += page["searchResults"]
        offset += 50
        if offset >= page["results"]:
            return found


def test_spaces_and_default_space(cloud):
    spaces = cloud.get("/api/v1/tenant/partition/device").json()
    assert spaces["errors"] is None
    results = spaces["result"]["searchResults"]
    assert [(s["id"], s["name"], s["defaultPartition"]) for s in results] == [
        (DEFAULT, "Default Space", True),
        (MARKETING, "Marketing Space", False),
    ]
    assert results[1]["domainRule"] == "ACCOUNTGROUP EQ 'Marketing'"
    assert all(s["deviceCount"] > 0 for s in results)

    tenant = cloud.get("/api/v1/metadata/tenant").json()
    assert tenant["result"]["defaultDmPartitionId"] == DEFAULT


def test_wrong_credentials_and_missing_role(emulator):
    base = emulator.base_url("cloud")
    response = httpx.get(
        base + "/api/v1/tenant/partition/device", auth=("admin@acme.example", "nope")
    )
    assert response.status_code == 401
    assert response.json()["result"] is None

    response = httpx.get(base + "/msa/v1/cps/rule", auth=("nocps@acme.example", "secret"))
    assert response.status_code == 403
    body = response.json()
    assert body["result"] is None and body["errors"]["fieldErrors"] is None
    assert "CPS" in body["errors"]["globalErrors"][0]["message"]

    response = httpx.put(
        base + "/api/v1/device/lock", params={"ids": 1}, auth=("readonly@acme.example", "secret")
    )
    assert response.status_code == 403


def test_rows_outside_1_to_500_answer_the_documented_400(cloud):
    for rows in (0, 501):
        response = cloud.get("/api/v1/device", params={"dmPartitionId": DEFAULT, "rows": rows})
        assert response.status_code == 400
        assert response.json() == ROWS_ERROR
    assert search(cloud, rows=500)["limit"] == 500


def test_search_paging_and_active_filter(cloud, fleet):
    in_space = [d for d in fleet.cloud.devices if d.space == DEFAULT]
    everything = search_all(cloud)
    assert len(everything) == len(in_space)
    ids = [d["id"] for d in everything]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {d["registrationState"] for d in everything} - {"ACTIVE"}

    active = search_all(
        cloud,
        fq="registrationState=ACTIVE",
        **{"sortFields[0].name": "id", "sortFields[0].order": "ASC"},
    )
    assert {d["registrationState"] for d in active} == {"ACTIVE"}
    assert len(active) == sum(1 for d in in_space if d.state == "ACTIVE")

    page = search(cloud, rows=5, start=0)
    assert page["offset"] == 0 and page["limit"] == 5 and len(page["searchResults"]) == 5
    assert SEARCH_KEYS <= set(page["searchResults"][0])
    assert page["facetedResults"]["PLATFORMTYPE"]


def test_search_filters_on_udid_and_device_group(cloud, fleet):
    device = next(d for d in fleet.cloud.devices if d.udid and d.space == DEFAULT)
    found = search(cloud, fq=f"udid={device.udid}")["searchResults"]
    assert [d["id"] for d in found] == [device.id]

    ios_active = search_all(cloud, fq=f"registrationState=ACTIVE AND DEVICEGROUP EQ '{IOS_GROUP}'")
    assert ios_active and {d["platformType"] for d in ios_active} == {"IOS"}
    assert {d["registrationState"] for d in ios_active} == {"ACTIVE"}

    assert cloud.get("/api/v1/device", params={"fq": "(a=1) OR b=2"}).status_code == 400


def test_marketing_space_is_separate(cloud, fleet):
    marketing = [d.id for d in fleet.cloud.devices if d.space == MARKETING]
    found = search_all(cloud, dmPartitionId=MARKETING)
    assert [d["id"] for d in found] == sorted(marketing)
    assert all(d["dmPartitionName"] == "Marketing Space" for d in found)
    groups = cloud.get("/api/v1/rule_group", params={"dmPartitionId": MARKETING}).json()
    names = {g["name"] for g in groups["result"]["searchResults"]}
    assert "Marketing MTD Threat" in names


def test_device_by_id_carries_groups(cloud, fleet):
    device = next(d for d in fleet.cloud.devices if d.platform == "IOS" and d.space == DEFAULT)
    response = cloud.get(f"/api/v1/device/{device.id}", params={"dmPartitionId": DEFAULT})
    result = response.json()["result"]
    assert result["guid"] == device.guid and result["udid"] == device.udid
    groups = {g["name"]: g for g in result["groups"]}
    assert {"All Devices", "iOS Devices"} <= set(groups)
    ios = groups["iOS Devices"]
    assert ios["definition"] == "PLATFORMTYPE EQ 'IOS'"
    assert ios["treeView"]["rule"] == {
        "field": "PLATFORMTYPE",
        "cfAttributeName": None,
        "operator": "EQ",
        "values": ["IOS"],
    }
    assert {
        "id",
        "name",
        "description",
        "type",
        "definition",
        "systemName",
        "membershipStatic",
        "memberCount",
        "dmPartitionId",
        "treeView",
        "staticMembers",
    } <= set(ios)

    other = cloud.get(f"/api/v1/device/{device.id}", params={"dmPartitionId": MARKETING})
    assert other.status_code == 404
    assert cloud.get("/api/v1/device/999").status_code == 404


def test_custom_attributes_move_a_device_into_a_dynamic_group(cloud, fleet, control):
    device = next(
        d
        for d in fleet.cloud.devices
        if d.space == DEFAULT and d.state == "ACTIVE" and d.attrs and "MTDThreat" not in d.attrs
    )
    before = cloud.get(f"/api/v1/device/{device.id}/customattributes").json()
    assert before == {"attrs": device.attrs}
    assert device.guid not in {d["identifier"] for d in cps_members(cloud, MTD_THREAT_GROUP)}

    attrs = {**before["attrs"], "MTDThreat": ["1"]}
    response = cloud.put(f"/api/v1/device/{device.id}/customattributes", json={"attrs": attrs})
    assert response.json() == {"errors": None, "result": 1}

    # Membership agrees everywhere: CPS list, DEVICEGROUP filter, groups[], control API.
    assert device.guid in {d["identifier"] for d in cps_members(cloud, MTD_THREAT_GROUP)}
    filtered = search_all(cloud, fq=f"DEVICEGROUP EQ '{MTD_THREAT_GROUP}'")
    assert device.id in {d["id"] for d in filtered}
    detail = cloud.get(f"/api/v1/device/{device.id}").json()["result"]
    assert MTD_THREAT_GROUP in {g["id"] for g in detail["groups"]}
    assert detail["customAttributes"] == {"attrs": attrs}
    state = control.get(f"/state/cloud/devices/{device.id}").json()
    assert MTD_THREAT_GROUP in {g["id"] for g in state["groups"]}

    # PUT replaces the whole map.
    cloud.put(
        f"/api/v1/device/{device.guid}/customattributes", json={"attrs": {"MTDThreat": ["0"]}}
    )
    after = cloud.get(f"/api/v1/device/{device.id}/customattributes").json()
    assert after == {"attrs": {"MTDThreat": ["0"]}}
    assert device.guid not in {d["identifier"] for d in cps_members(cloud, MTD_THREAT_GROUP)}


def test_custom_attributes_reject_bad_values(cloud, fleet):
    device = fleet.cloud.devices[0]
    path = f"/api/v1/device/{device.id}/customattributes"
    assert cloud.put(path, json={"attrs": {"MTDThreat": [""]}}).status_code == 400
    assert cloud.put(path, json={"attrs": {"MTDThreat": [1]}}).status_code == 400
    assert cloud.put(path, json={"nope": 1}).status_code == 400
    assert cloud.put("/api/v1/device/1/customattributes", json={"attrs": {}}).status_code == 404


def test_lock_is_recorded(cloud, fleet, control):
    device = next(d for d in fleet.cloud.devices if d.state == "ACTIVE")
    response = cloud.put("/api/v1/device/lock", params={"ids": device.id, "message": "Threat"})
    assert response.json() == {"errors": None, "result": 1}
    state = control.get(f"/state/cloud/devices/{device.id}").json()
    assert state["locked"] is True and state["lock"]["message"] == "Threat"
    assert state["lock"]["count"] == 1
    assert cloud.put("/api/v1/device/lock", params={"ids": 1}).status_code == 404


def test_group_lists_and_their_limits(cloud):
    groups = cloud.get("/api/v1/rule_group", params={"dmPartitionId": DEFAULT, "rows": 50})
    results = groups.json()["result"]["searchResults"]
    assert {"id", "name", "description", "definition"} <= set(results[0])
    assert cloud.get("/api/v1/rule_group", params={"rows": 51}).status_code == 400

    rules = cloud.get("/msa/v1/cps/rule", params={"offset": 0, "limit": 50}).json()
    assert set(rules) == {"searchResults", "results", "offset", "limit"}
    definitions = {r["name"]: r["definition"] for r in rules["searchResults"]}
    assert definitions["MTD Threat Detected"] == "CFDEVICE[MTDThreat] EQ '1'"
    assert definitions["iOS Devices"] == "PLATFORMTYPE EQ 'IOS'"
    assert rules["results"] == len(rules["searchResults"])
    assert cloud.get("/msa/v1/cps/rule", params={"limit": 51}).status_code == 400
    page = cloud.get("/msa/v1/cps/rule", params={"offset": 2, "limit": 2}).json()
    assert [r["id"] for r in page["searchResults"]] == [
        r["id"] for r in rules["searchResults"][2:4]
    ]


def test_cps_devices_by_rule(cloud, fleet):
    members = cps_members(cloud, IOS_GROUP)
    expected = {d.guid for d in fleet.cloud.devices if d.platform == "IOS" and d.space == DEFAULT}
    assert {d["identifier"] for d in members} == expected
    assert {"identifier", "status", "os", "osVersion", "model", "serialNumber", "iosUdid"} <= set(
        members[0]
    )
    assert cloud.get("/msa/v1/cps/device", params={"ruleId": 38102}).status_code == 400
    assert cloud.get("/msa/v1/cps/device", params={"ruleId": 1}).status_code == 404
    assert (
        cloud.get("/msa/v1/cps/device", params={"ruleId": IOS_GROUP, "limit": 51}).status_code
        == 400
    )


def test_cps_app_inventory_limits_and_rate(cloud, fleet, control):
    guids = [d.guid for d in fleet.cloud.devices if d.space == DEFAULT]
    response = cloud.post(
        "/msa/v1/cps/device/application", json={"identifiers": guids[:50], "identifierType": "GUID"}
    )
    assert response.status_code == 200
    entries = response.json()
    assert [e["identifier"] for e in entries] == guids[:50]
    assert {"identifier", "name", "version", "managed"} <= set(entries[0]["applications"][0])
    too_many = cloud.post(
        "/msa/v1/cps/device/application", json={"identifiers": guids[:51], "identifierType": "GUID"}
    )
    assert too_many.status_code == 400

    control.post("/config", json={"appInventoryPerMinute": 3})
    statuses = [
        cloud.post(
            "/msa/v1/cps/device/application",
            json={"identifiers": guids[:1], "identifierType": "GUID"},
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    throttled = cloud.post(
        "/msa/v1/cps/device/application", json={"identifiers": guids[:1], "identifierType": "GUID"}
    )
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
