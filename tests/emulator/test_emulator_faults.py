"""Fault switches, set through the control API and at start."""

import json
import time

import httpx
import pytest

from emulators.mobileiron import start_emulator

SPACE = {"adminDeviceSpaceId": 1}


def set_faults(control, *faults):
    response = control.post("/faults", json={"faults": list(faults)})
    assert response.status_code == 200, response.text
    return response.json()["faults"]


def page(core, offset, limit=10):
    return core.get(
        "/api/v2/devices",
        params={**SPACE, "labelId": -1, "fields": "common.uuid", "limit": limit, "offset": offset},
    )


def test_latency(core, control):
    set_faults(control, {"kind": "latency", "ms": 150, "product": "core"})
    started = time.perf_counter()
    assert core.get("/api/v2/ping").status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_error_share_is_deterministic_for_a_seed(core, control):
    rule = {"kind": "error", "rate": 0.5, "status": 503, "seed": 42}

    def run():
        set_faults(control, rule)
        return [core.get("/api/v2/ping").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 503}


def test_throttle_after_n_requests(core, control):
    set_faults(control, {"kind": "throttle", "after": 2, "retry_after": 7})
    assert [core.get("/api/v2/ping").status_code for _ in range(2)] == [200, 200]
    throttled = core.get("/api/v2/ping")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["messages"][0]["messageKey"].endswith("429")


def test_throttle_on_a_share_and_times(cloud, control):
    set_faults(control, {"kind": "throttle", "rate": 1.0, "times": 2, "product": "cloud"})
    statuses = [cloud.get("/api/v1/metadata/tenant").status_code for _ in range(4)]
    assert statuses == [429, 429, 200, 200]
    snapshot = control.get("/faults").json()["faults"][0]
    assert snapshot["fired"] == 2 and snapshot["matched"] == 4


def test_hang_longer_than_the_client_timeout(core, control):
    set_faults(control, {"kind": "hang", "seconds": 3, "path": "/api/v2/ping"})
    with pytest.raises(httpx.TimeoutException):
        core.get("/api/v2/ping", timeout=0.3)
    control.delete("/faults")
    assert core.get("/api/v2/ping").status_code == 200


def test_repeated_page(core, control):
    first = page(core, 0).json()["results"]
    second = page(core, 10).json()["results"]
    assert first != second
    set_faults(control, {"kind": "repeat_page", "path": "/api/v2/devices", "times": 1})
    assert page(core, 10).json()["results"] == first
    assert page(core, 10).json()["results"] == second


def test_empty_page_while_more_remains(core, cloud, control):
    set_faults(control, {"kind": "empty_page"})
    body = page(core, 0).json()
    assert body["results"] == [] and body["hasMore"] is True and body["totalCount"] == 80

    result = cloud.get("/api/v1/device", params={"rows": 10}).json()["result"]
    assert result["searchResults"] == [] and result["totalCount"] > 10
    cps = cloud.get("/msa/v1/cps/device", params={"ruleId": 38001}).json()
    assert cps["searchResults"] == [] and cps["results"] > 0


def test_malformed_json(core, control):
    set_faults(control, {"kind": "malformed", "path": "/api/v2/devices"})
    response = page(core, 0)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert core.get("/api/v2/ping").json()["results"]["apiVersion"] == 2


def test_credentials_stop_working_after_n_requests(core, control):
    set_faults(control, {"kind": "expire_credentials", "after": 3, "product": "core"})
    statuses = [core.get("/api/v2/ping").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 401, 401]


def test_faults_are_scoped_by_product_path_and_user(emulator, core, cloud, control):
    set_faults(
        control,
        {"kind": "error", "product": "cloud"},
        {"kind": "error", "status": 502, "path": "/api/v2/labels"},
        {"kind": "expire_credentials", "username": "noapps"},
    )
    assert cloud.get("/api/v1/metadata/tenant").status_code == 500
    assert core.get("/api/v2/ping").status_code == 200
    assert core.get("/api/v2/labels/label_summary", params=SPACE).status_code == 502
    other = httpx.get(emulator.base_url("core") + "/api/v2/ping", auth=("noapps", "secret"))
    assert other.status_code == 401


def test_control_api_lists_and_clears_faults(core, control):
    assert control.post("/faults", json={"kind": "nope"}).status_code == 400
    assert control.post("/faults", json={"kind": "latency", "bogus": 1}).status_code == 400
    set_faults(control, {"kind": "latency", "ms": 1})
    control.post("/faults?append=1", json={"kind": "error", "path": "/nowhere"})
    listed = control.get("/faults").json()["faults"]
    assert [f["kind"] for f in listed] == ["latency", "error"]
    assert control.delete("/faults").json() == {"faults": []}
    assert control.get("/faults").json()["faults"] == []


def test_faults_given_at_start(fleet):
    handle = start_emulator(fleet, faults=[{"kind": "error", "status": 503, "times": 1}])
    try:
        url = handle.base_url("core") + "/api/v2/ping"
        statuses = [httpx.get(url, auth=("admin", "secret")).status_code for _ in range(2)]
        assert statuses == [503, 200]
    finally:
        handle.stop()
