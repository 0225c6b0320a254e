"""The device API: matrix with ETag, reports, mitigations, and every kind of bad input."""

import json

from bastion.threats.models import DeviceRateWindow, ResponseAction, ThreatEvent
from tests.threats.conftest import activate, auth, mitigate, pick_device, report, respond, target


def test_the_matrix_has_the_devices_platform_and_an_etag(client, iris):
    answer = client.get("/api/device/v1/matrix", headers=auth(iris.token))

    ids = {row["threat_id"] for row in answer.json()["threats"]}
    assert answer.status_code == 200 and answer["ETag"]
    assert "device_jailbroken" in ids and "device_rooted" not in ids


def test_an_unchanged_matrix_answers_304_until_a_deploy(client, synced_core, iris):
    first = client.get("/api/device/v1/matrix", headers=auth(iris.token))
    tag = first["ETag"]

    same = client.get("/api/device/v1/matrix", headers={**auth(iris.token), "If-None-Match": tag})
    respond(iris.group, "arp_mitm", severity="low")
    changed = client.get(
        "/api/device/v1/matrix", headers={**auth(iris.token), "If-None-Match": tag}
    )

    assert same.status_code == 304 and same.content == b""
    assert changed.status_code == 200
    assert changed.json()["version"] == first.json()["version"] + 1
    row = next(r for r in changed.json()["threats"] if r["threat_id"] == "arp_mitm")
    assert row["severity"] == "low"


def test_a_repeated_event_is_stored_once_and_answered_the_same(client, synced_core, iris):
    respond(iris.group, "arp_mitm", mdm_action=target(synced_core, "MTD-Quarantine").pk)

    first = report(client, iris, "arp_mitm", "ev-1", details={"bssid": "aa:bb"})
    again = report(client, iris, "arp_mitm", "ev-1", details={"bssid": "aa:bb"})

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert ThreatEvent.objects.count() == 1 and ResponseAction.objects.count() == 1


def test_an_event_id_reused_for_another_threat_is_a_conflict(client, iris):
    report(client, iris, "arp_mitm", "ev-1")

    answer = report(client, iris, "ssl_strip", "ev-1")

    assert answer.status_code == 409 and answer.json()["field"] == "event_id"
    assert ThreatEvent.objects.get().threat_id == "arp_mitm"


def test_details_are_kept_as_given(client, iris):
    details = {"network_name": "Café <Free>", "bssid": "00:11:22:33:44:55", "process": "x"}

    report(client, iris, "arp_mitm", "ev-1", details=details)

    assert ThreatEvent.objects.get().details == details


def test_bad_reports_name_the_problem_and_store_nothing(client, iris):
    cases = [
        ({"threat_id": "no_such_threat"}, 422, "threat_id"),
        ({"threat_id": "device_rooted"}, 422, "threat_id"),
        ({"detected_at": "2999-01-01T00:00:00Z"}, 422, "detected_at"),
        ({"detected_at": "2026-01-05T10:00:00"}, 422, "detected_at"),
        ({"detected_at": 12}, 422, "detected_at"),
        ({"details": {"blob": "x" * 5000}}, 422, "details"),
        ({"details": ["not", "an", "object"]}, 422, "details"),
        ({"event_id": "has spaces"}, 422, "event_id"),
        ({"surprise": 1}, 422, "surprise"),
    ]
    for change, status, field in cases:
        body = {
            "event_id": "ev-1",
            "threat_id": "arp_mitm",
            "detected_at": "2026-01-05T10:00:00Z",
            **change,
        }
        answer = client.post(
            "/api/device/v1/threats",
            body,
            content_type="application/json",
            headers=auth(iris.token),
        )

        assert answer.status_code == status, change
        assert field in json.dumps(answer.json()), change
    assert not ThreatEvent.objects.exists()


def test_an_oversized_body_is_refused(client, iris):
    events = [
        {
            "event_id": f"ev-{i}",
            "threat_id": "arp_mitm",
            "detected_at": "2026-01-05T10:00:00Z",
            "details": {"blob": "x" * 3000},
        }
        for i in range(100)
    ]

    answer = client.post(
        "/api/device/v1/threats/batch",
        {"events": events},
        content_type="application/json",
        headers=auth(iris.token),
    )

    assert answer.status_code == 413 and answer.json()["field"] == "body"
    assert not ThreatEvent.objects.exists()


def test_a_batch_with_one_bad_event_stores_none(client, iris):
    events = [
        {"event_id": "ev-1", "threat_id": "arp_mitm", "detected_at": "2026-01-05T10:00:00Z"},
        {"event_id": "ev-2", "threat_id": "nope", "detected_at": "2026-01-05T10:00:00Z"},
    ]

    answer = client.post(
        "/api/device/v1/threats/batch",
        {"events": events},
        content_type="application/json",
        headers=auth(iris.token),
    )

    assert answer.status_code == 422 and answer.json()["field"] == "threat_id"
    assert not ThreatEvent.objects.exists()


def test_a_batch_is_stored_whole(client, iris):
    events = [
        {"event_id": f"ev-{i}", "threat_id": "arp_mitm", "detected_at": "2026-01-05T10:00:00Z"}
        for i in range(3)
    ]

    answer = client.post(
        "/api/device/v1/threats/batch",
        {"events": events},
        content_type="application/json",
        headers=auth(iris.token),
    )

    assert answer.status_code == 200 and len(answer.json()["events"]) == 3
    assert ThreatEvent.objects.count() == 3


def test_another_devices_event_cannot_be_mitigated(client, synced_core, iris):
    other = pick_device(synced_core, exclude=[iris.pk])
    other.token = activate(other)
    report(client, other, "arp_mitm", "ev-1")

    answer = mitigate(client, iris, "ev-1")

    assert answer.status_code == 404 and answer.json()["field"] == "event_id"
    assert ThreatEvent.objects.get().state == ThreatEvent.ACTIVE


def test_a_mitigation_in_the_future_is_refused(client, iris):
    report(client, iris, "arp_mitm", "ev-1")

    answer = mitigate(client, iris, "ev-1", mitigated_at="2999-01-01T00:00:00Z")

    assert answer.status_code == 422 and answer.json()["field"] == "mitigated_at"
    assert ThreatEvent.objects.get().state == ThreatEvent.ACTIVE


def test_requests_are_rate_limited_per_device(client, settings, synced_core, iris):
    settings.BASTION_DEVICE_RATE_LIMIT = 3
    other = pick_device(synced_core, exclude=[iris.pk])
    other.token = activate(other)

    answers = [client.get("/api/device/v1/matrix", headers=auth(iris.token)) for _ in range(4)]
    others = client.get("/api/device/v1/matrix", headers=auth(other.token))

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert others.status_code == 200
    assert DeviceRateWindow.objects.get(device=iris).count == 4


def test_without_a_credential_nothing_is_accepted(client, iris):
    answer = client.post(
        "/api/device/v1/threats",
        {},
        content_type="application/json",
        headers={"Authorization": "Bearer nope.nope"},
    )

    assert answer.status_code == 401
    assert not ThreatEvent.objects.exists()


def test_the_device_api_publishes_its_openapi_document(client):
    answer = client.get("/api/device/v1/openapi.json")

    paths = answer.json()["paths"]
    assert "/api/device/v1/threats" in paths and "/api/device/v1/matrix" in paths
