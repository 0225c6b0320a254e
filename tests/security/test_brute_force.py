"""Brute force: sign-in lockout, per-device and per-tenant limits, and activation tokens
that can't be guessed or told apart from one another."""

import uuid

import pytest
from django.utils import timezone

from bastion.activation import tokens
from bastion.activation.models import ActivationToken
from bastion.inventory.models import Device
from tests.security.conftest import bearer
from tests.security.world import PASSWORD


def sign_in(client, username, password, ip="198.51.100.7"):
    return client.post("/sign-in", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(
    client, acme, settings
):
    settings.BASTION_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert sign_in(client, acme.admin.username, "wrong password 1").status_code == 401

    locked = sign_in(client, acme.admin.username, PASSWORD)

    assert locked.status_code == 401
    assert "_auth_user_id" not in client.session


def test_one_address_trying_many_accounts_is_locked_out(client, acme, settings):
    settings.BASTION_LOGIN_MAX_FAILURES = 2
    for index in range(8):
        sign_in(client, f"nobody-{index}", "wrong password 1", ip="198.51.100.9")

    from_there = sign_in(client, acme.admin.username, PASSWORD, ip="198.51.100.9")
    elsewhere = sign_in(client, acme.admin.username, PASSWORD, ip="198.51.100.10")

    assert from_there.status_code == 401
    assert elsewhere.status_code == 302


def test_the_device_api_limits_each_device(client, acme, globex, settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 3
    answers = [
        client.get("/api/device/v1/matrix", headers=bearer(acme.device_token)).status_code
        for _ in range(4)
    ]

    other = client.get("/api/device/v1/matrix", headers=bearer(globex.device_token))
    limited = client.get("/api/device/v1/matrix", headers=bearer(acme.device_token))

    assert answers == [200, 200, 200, 429]
    assert 0 < int(limited["Retry-After"]) <= 60
    assert other.status_code == 200


def test_threat_reports_count_against_the_same_limit(client, acme, settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 2
    body = {"event_id": "e", "threat_id": "arp_mitm", "detected_at": "2026-01-05T10:00:00Z"}
    answers = []
    for index in range(3):
        body["event_id"] = f"flood-{index}"
        response = client.post(
            "/api/device/v1/threats",
            body,
            content_type="application/json",
            headers=bearer(acme.device_token),
        )
        answers.append(response.status_code)

    assert answers == [200, 200, 429]


def test_reactivation_with_a_credential_counts_against_the_device_limit(client, acme, settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 2
    token = acme.device_token
    answers = []
    for _ in range(3):
        response = client.post("/api/device/v1/reactivate", headers=bearer(token))
        answers.append(response.status_code)
        if response.status_code == 200:
            token = response.json()["credential"]

    assert answers == [200, 200, 429]


def test_activations_of_unknown_devices_are_limited_per_tenant(client, core_integration, settings):
    settings.BASTION_ADHOC_SYNCS_PER_MINUTE = 2
    tenant_id = core_integration.tenant.tenant_id
    answers = []
    for _ in range(3):
        response = client.post(
            "/api/device/v1/activate",
            {"tenantid": tenant_id, "uuid": str(uuid.uuid4())},
            content_type="application/json",
        )
        answers.append((response.status_code, response.json()["error"]))

    assert answers[:2] == [(404, "not_managed")] * 2
    assert answers[2] == (429, "rate_limited")


def test_activation_tokens_are_long_random_values(acme):
    link = acme.link.token
    others = {tokens.replace(acme.integration, ActivationToken.LINK, "t").token for _ in range(5)}

    assert len(link) >= 43  # 256 bits, url-safe base64
    assert len(others | {link}) == 6
    assert len(acme.code.key_id) >= 16


def _activate(client, **body):
    body.setdefault("mdm_id", acme_uuid())
    response = client.post("/api/device/v1/activate", body, content_type="application/json")
    return response.status_code, response.json()


def acme_uuid() -> str:
    return "0b6d2c4e-1111-4aaa-8bbb-a00000000001"


def test_unknown_forged_and_other_tenant_tokens_get_one_same_answer(client, acme, globex):
    ended = acme.link.token
    tokens.replace(acme.integration, ActivationToken.LINK, "t")
    forged_code = acme.code.token[:-4] + (
        "AAAA" if not acme.code.token.endswith("AAAA") else "BBBB"
    )

    answers = [
        _activate(client, token="x" * 43),
        _activate(client, token=ended),
        _activate(client, token=globex.link.token, tenantid=acme.tenant.tenant_id),
        _activate(client, activation_code="not-a-code"),
        _activate(client, activation_code=forged_code),
        _activate(client, activation_code=globex.code.token, tenantid=acme.tenant.tenant_id),
    ]

    assert {status for status, _ in answers} == {401}
    assert len({(body["error"], body["message"], body["field"]) for _, body in answers}) == 1


def test_an_unknown_tenant_id_gets_the_same_answer_as_a_malformed_one(client, acme):
    unknown = _activate(client, tenantid="0" * 16, uuid=acme_uuid())
    malformed = _activate(client, tenantid="'; drop table --", uuid=acme_uuid())

    assert unknown == malformed
    assert unknown[0] == 401


def test_an_expired_link_says_so_without_telling_anything_else(client, acme):
    ActivationToken.objects.filter(pk=acme.link.pk).update(expires_at=timezone.now())

    status, body = _activate(client, token=acme.link.token)

    assert status == 401 and body["error"] == "expired_token"
    assert acme.tenant.name not in str(body) and acme.tenant.tenant_id not in str(body)


@pytest.mark.parametrize("pickup", ["", "x" * 43, "0" * 64])
def test_held_reactivations_cannot_be_collected_by_guessing(client, acme, pickup):
    response = client.post(
        "/api/device/v1/activate/pickup",
        {"request_id": acme.request.pk, "pickup_token": pickup},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert Device.objects.get(pk=acme.device.pk).credentials.count() == 1
