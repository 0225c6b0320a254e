"""Replay mode: recorded responses from emulators/mobileiron/recordings/basic."""

import json
from pathlib import Path

import httpx
import pytest

from emulators.mobileiron import start_emulator

RECORDINGS = Path(__file__).resolve().parents[2] / "emulators/mobileiron/recordings/basic"
FIELDS = "common.uuid,common.status,common.platform"


@pytest.fixture
def replay():
    handle = start_emulator(None, replay=RECORDINGS)
    yield handle
    handle.stop()


def test_a_complete_core_sync_replays(replay):
    with httpx.Client(base_url=replay.base_url("core"), auth=("admin", "secret")) as core:
        assert core.get("/api/v2/ping").json()["results"]["apiVersion"] == 2
        space = core.get("/api/v2/device_spaces/mine").json()["results"][0]["id"]
        labels = core.get(
            "/api/v2/labels/label_summary",
            params={"adminDeviceSpaceId": space, "limit": 200, "offset": 0},
        ).json()
        assert labels["results"][0]["name"] == "All-Smartphones"

        synced = {}
        for label in labels["results"]:
            offset = 0
            while True:
                page = core.get(
                    "/api/v2/devices",
                    params={
                        "adminDeviceSpaceId": space,
                        "labelId": label["id"],
                        "query": "",
                        "fields": FIELDS,
                        "limit": 200,
                        "offset": offset,
                    },
                ).json()
                for record in page["results"]:
                    synced[record["common.uuid"]] = record
                offset += 200
                if not page["hasMore"]:
                    break
        assert len(synced) == labels["results"][0]["deviceCount"]
        assert {r["common.status"] for r in synced.values()} == {"ACTIVE", "RETIRED"}

        inventory = core.get(
            "/api/v2/devices/appinventory",
            params={"adminDeviceSpaceId": space, "deviceUuids": ",".join(list(synced)[:25])},
        ).json()
        assert {r["deviceUuid"] for r in inventory["results"]} == set(synced)


def test_recorded_pages_replay_with_has_more(replay):
    with httpx.Client(base_url=replay.base_url("core"), auth=("admin", "secret")) as core:
        seen, offset = [], 0
        while True:
            page = core.get(
                "/api/v2/devices",
                params={
                    "adminDeviceSpaceId": 1,
                    "labelId": -1,
                    "fields": FIELDS,
                    "limit": 2,
                    "offset": offset,
                },
            ).json()
            seen += [r["common.uuid"] for r in page["results"]]
            offset += 2
            if not page["hasMore"]:
                break
        assert len(seen) == len(set(seen)) == 5


def test_a_cloud_sync_replays(replay):
    with httpx.Client(
        base_url=replay.base_url("cloud"), auth=("admin@acme.example", "secret")
    ) as cloud:
        spaces = cloud.get("/api/v1/tenant/partition/device").json()["result"]["searchResults"]
        default = cloud.get("/api/v1/metadata/tenant").json()["result"]["defaultDmPartitionId"]
        assert default in {s["id"] for s in spaces}
        rules = cloud.get("/msa/v1/cps/rule", params={"offset": 0, "limit": 50}).json()
        ios = next(r for r in rules["searchResults"] if r["name"] == "iOS Devices")
        members = cloud.get(
            "/msa/v1/cps/device", params={"ruleId": ios["id"], "offset": 0, "limit": 50}
        ).json()
        assert members["searchResults"] and {m["os"] for m in members["searchResults"]} == {"IOS"}

        search = cloud.get(
            "/api/v1/device",
            params={
                "dmPartitionId": default,
                "rows": 500,
                "start": 0,
                "fq": "registrationState=ACTIVE",
                "sortFields[0].name": "id",
                "sortFields[0].order": "ASC",
            },
        ).json()["result"]
        assert search["totalCount"] == len(search["searchResults"]) > 0
        guids = [d["guid"] for d in search["searchResults"]]
        apps = cloud.post(
            "/msa/v1/cps/device/application", json={"identifiers": guids, "identifierType": "GUID"}
        ).json()
        assert set(guids) <= {entry["identifier"] for entry in apps}


def test_unrecorded_requests_answer_404_and_auth_is_required(replay):
    base = replay.base_url("core")
    missing = httpx.get(base + "/api/v2/devices/count", auth=("admin", "secret"))
    assert missing.status_code == 404
    body = missing.json()
    assert body["emulator"] == "replay" and body["path"] == "/api/v2/devices/count"
    assert httpx.get(base + "/api/v2/ping").status_code == 401


def test_fallback_to_the_stateful_emulator(fleet):
    handle = start_emulator(fleet, replay=RECORDINGS, replay_fallback=True)
    try:
        base = handle.base_url("core")
        ping = httpx.get(base + "/api/v2/ping", auth=("admin", "secret")).json()
        recorded = json.loads((RECORDINGS / "core/01-ping.json").read_text())
        assert ping == recorded["response"]["body"]
        device = fleet.core.devices[0]
        labels = httpx.get(
            f"{base}/api/v2/devices/{device.uuid}/labels",
            params={"adminDeviceSpaceId": 1},
            auth=("admin", "secret"),
        )
        assert labels.status_code == 200
        assert (
            httpx.get(
                f"{base}/api/v2/devices/{device.uuid}/labels",
                params={"adminDeviceSpaceId": 1},
                auth=("admin", "bad"),
            ).status_code
            == 401
        )
    finally:
        handle.stop()


def test_replay_of_a_custom_folder(tmp_path):
    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "lock.json").write_text(
        json.dumps(
            {
                "request": {"method": "PUT", "path": "/api/v1/device/lock", "query": {"ids": "7"}},
                "response": {
                    "status": 429,
                    "headers": {"Retry-After": "3"},
                    "body": {
                        "errors": {"globalErrors": [{"message": "slow down"}]},
                        "result": None,
                    },
                },
            }
        )
    )
    (tmp_path / "cloud" / "broken.json").write_text(
        json.dumps(
            {
                "request": {"method": "GET", "path": "/api/v1/metadata/tenant"},
                "response": {"text": '{"errors": nu'},
            }
        )
    )
    handle = start_emulator(None, replay=tmp_path, product="cloud")
    try:
        auth = ("anyone", "anything")
        response = httpx.put(handle.url + "/api/v1/device/lock", params={"ids": 7}, auth=auth)
        assert response.status_code == 429 and response.headers["Retry-After"] == "3"
        broken = httpx.get(handle.url + "/api/v1/metadata/tenant", auth=auth)
        assert broken.text == '{"errors": nu'
    finally:
        handle.stop()
