"""Hostile data from the MDM and from agents: markup, huge fields, deep nesting, wrong
types, invalid UTF-8. Stored as text, shown escaped, never a 500, nothing stored changes."""

import json

import pytest

from bastion.inventory.models import App, DeviceUser, Profile
from bastion.mdm.models import ActionTarget
from bastion.threats.models import ThreatEvent
from tests.conftest import add_integration, sync
from tests.security.conftest import bearer, sign_in
from tests.security.world import build_side, snapshot

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;"


@pytest.fixture
def hostile_sync(tenant, emulator):
    """A Core whose users, apps, profiles and labels carry markup and huge values."""
    fleet = emulator.fleet
    for index, user in enumerate(fleet.users):
        user.first_name = f"{SCRIPT}{index}"
        # One user in ten has a name no column can hold: their devices are skipped, named.
        user.last_name = "L" * 5000 if index % 10 == 0 else "\u00e9\u4e2d" + SCRIPT
    for index, app in enumerate(fleet.apps):
        app.name = SCRIPT + ("A" * 3000 if index % 2 else "")
    for index, profile in enumerate(fleet.profiles):
        profile.display_name = SCRIPT
        profile.organization = "\ud800 lone surrogate" if index % 2 else SCRIPT
    for label in fleet.core.labels:
        if label.name == "Engineering":
            label.name = SCRIPT

    integration = add_integration(tenant, emulator, "core", ["Executives", "Sales"])
    run = sync(integration)
    return integration, run


def test_a_hostile_mdm_is_synced_without_a_crash_and_stored_within_limits(hostile_sync, tenant):
    integration, run = hostile_sync

    assert run.status == "done", run.error
    assert run.added > 0
    assert any("longer than 255 characters" in message for message in run.messages)
    users = DeviceUser.objects.filter(tenant=tenant)
    assert users.filter(first_name__startswith="<script>").exists()
    for user in users:
        assert len(user.first_name) <= 255 and len(user.last_name) <= 255
    assert App.objects.filter(tenant=tenant, name=SCRIPT).exists()
    assert Profile.objects.filter(tenant=tenant, name=SCRIPT).exists()
    for app in App.objects.filter(tenant=tenant):
        assert len(app.name) <= 255
    for profile in Profile.objects.filter(tenant=tenant):
        assert "\ud800" not in profile.organization
    assert ActionTarget.objects.filter(integration=integration, name=SCRIPT).exists()


@pytest.mark.parametrize("page", ["/users", "/apps", "/profiles", "/devices", "/policy", "/mdm"])
def test_console_pages_show_hostile_names_as_text(client, hostile_sync, tenant, page):
    from bastion.tenancy.models import Membership
    from bastion.tenancy.services import create_administrator

    admin = create_administrator(tenant, "alice-sec", "correct horse battery 9", Membership.ADMIN)
    client.force_login(admin)

    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    if page in ("/users", "/apps", "/profiles"):
        assert ESCAPED in html, f"{page} does not show the hostile names at all"
    assert "<script>alert" not in html
    assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")


def test_the_sync_run_and_its_messages_hold_no_raw_markup_in_the_admin_api(
    client, hostile_sync, tenant
):
    from bastion.api.models import AdminToken
    from bastion.tenancy.models import Membership
    from bastion.tenancy.services import create_administrator

    admin = create_administrator(tenant, "alice-api", "correct horse battery 9", Membership.ADMIN)
    _, token = AdminToken.issue(admin, tenant)
    group = next(g for g in hostile_sync[0].selected_groups())

    response = client.get(f"/api/admin/v1/matrices/{group.pk}", headers=bearer(token))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    json.loads(response.content)


def _post(client, url, raw: bytes | str, token: str, method="post"):
    return getattr(client, method)(
        url, data=raw, content_type="application/json", headers=bearer(token)
    )


DEEP = "[" * 50_000 + "]" * 50_000
DEEP_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000

HOSTILE_THREAT_BODIES = {
    "invalid utf-8": b'{"event_id": "e1", "threat_id": "arp_mitm\xff\xfe", '
    b'"detected_at": "2026-01-05T10:00:00Z"}',
    "deep list": DEEP,
    "deep details": '{"event_id": "e2", "threat_id": "arp_mitm", '
    '"detected_at": "2026-01-05T10:00:00Z", "details": ' + DEEP_OBJECT + "}",
    "not json": "<xml/>",
    "a list": "[1, 2, 3]",
    "wrong types": {"event_id": 5, "threat_id": ["x"], "detected_at": 1700000000},
    "null": "null",
    "huge details": {
        "event_id": "e3",
        "threat_id": "arp_mitm",
        "detected_at": "2026-01-05T10:00:00Z",
        "details": {"ssid": "x" * 200_000},
    },
    "unknown threat with markup": {
        "event_id": "e4",
        "threat_id": SCRIPT[:60],
        "detected_at": "2026-01-05T10:00:00Z",
    },
    "naive time": {"event_id": "e5", "threat_id": "arp_mitm", "detected_at": "2026-01-05T10:00"},
    "event id with markup": {
        "event_id": SCRIPT,
        "threat_id": "arp_mitm",
        "detected_at": "2026-01-05T10:00:00Z",
    },
    "extra field": {
        "event_id": "e6",
        "threat_id": "arp_mitm",
        "detected_at": "2026-01-05T10:00:00Z",
        "device_id": 1,
    },
    "surrogate": '{"event_id": "e7", "threat_id": "\\ud800", '
    '"detected_at": "2026-01-05T10:00:00Z"}',
}


@pytest.fixture
def acme(db):
    from bastion.tenancy.services import create_tenant

    return build_side(create_tenant("Acme Hostile"), "acme")


@pytest.mark.parametrize("case", sorted(HOSTILE_THREAT_BODIES))
@pytest.mark.parametrize("route", ["/api/device/v1/threats", "/api/device/v1/threats/batch"])
def test_hostile_threat_reports_are_refused_with_a_4xx_and_store_nothing(client, acme, case, route):
    body = HOSTILE_THREAT_BODIES[case]
    if isinstance(body, dict) and route.endswith("batch"):
        body = {"events": [body]}
    raw = json.dumps(body) if isinstance(body, dict) else body
    before = (ThreatEvent.objects.count(), snapshot(acme))

    response = _post(client, route, raw, acme.device_token)

    assert 400 <= response.status_code < 500, (case, response.status_code, response.content[:300])
    # The refusal may quote the caller's own input back: as JSON, never as a page.
    assert response["Content-Type"].startswith("application/json")
    assert (ThreatEvent.objects.count(), snapshot(acme)) == before


@pytest.mark.parametrize("case", sorted(HOSTILE_THREAT_BODIES))
def test_hostile_mitigations_are_refused_with_a_4xx(client, acme, case):
    body = HOSTILE_THREAT_BODIES[case]
    raw = json.dumps(body) if isinstance(body, dict) else body
    before = snapshot(acme)

    response = _post(
        client, "/api/device/v1/threats/acme-event-1/mitigation", raw, acme.device_token
    )

    assert 400 <= response.status_code < 500, (case, response.status_code, response.content[:300])
    assert snapshot(acme) == before


@pytest.mark.parametrize("case", sorted(HOSTILE_THREAT_BODIES))
def test_hostile_activations_are_refused_with_a_4xx(client, acme, case):
    body = HOSTILE_THREAT_BODIES[case]
    raw = json.dumps(body) if isinstance(body, dict) else body

    response = client.post("/api/device/v1/activate", data=raw, content_type="application/json")

    assert 400 <= response.status_code < 500, (case, response.status_code, response.content[:300])


ADMIN_WRITES = [
    ("put", "/api/admin/v1/matrices/{group}/rows/arp_mitm"),
    ("put", "/api/admin/v1/activation/settings"),
    ("post", "/api/admin/v1/integrations/{integration}/activation/link/regenerate"),
]
HOSTILE_ADMIN_BODIES = {
    "invalid utf-8": b'{"enabled": "\xff\xfe"}',
    "deep": DEEP,
    "deep object": DEEP_OBJECT,
    "wrong types": {
        "enabled": {"a": [1]},
        "severity": 5,
        "mdm_action": [1, 2],
        "email_subject": ["x"],
        "days": "many",
        "expires_at": 12,
    },  # fmt: skip
    "huge": {"email_html": "x" * 100_000, "email_subject": SCRIPT * 50, "time_zone": "x" * 500},
    "markup": {"severity": SCRIPT, "mdm_action": SCRIPT, "email_subject": 7, "days": SCRIPT},
    "not json": "<xml/>",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ADMIN_BODIES))
@pytest.mark.parametrize(("method", "route"), ADMIN_WRITES)
def test_hostile_admin_writes_are_refused_with_a_4xx_and_change_nothing(
    client, acme, case, method, route
):
    from bastion.activation.models import ActivationSettings

    body = HOSTILE_ADMIN_BODIES[case]
    raw = json.dumps(body) if isinstance(body, dict) else body
    url = route.format(group=acme.group.pk, integration=acme.integration.pk)
    settings_before = list(ActivationSettings.objects.values())
    before = snapshot(acme)

    response = _post(client, url, raw, acme.admin_token, method=method)

    assert 400 <= response.status_code < 500, (case, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert snapshot(acme) == before
    assert list(ActivationSettings.objects.values()) == settings_before


def test_a_time_zone_with_markup_is_refused_naming_the_field(client, acme):
    before = snapshot(acme)

    response = client.post(
        f"/api/admin/v1/integrations/{acme.integration.pk}/activation/link/regenerate",
        data=json.dumps({"expires_at": "2027-01-01T00:00", "time_zone": SCRIPT}),
        content_type="application/json",
        headers=bearer(acme.admin_token),
    )

    assert response.status_code == 400
    assert "time_zone" in response.json()["detail"]
    assert snapshot(acme) == before


def test_a_hostile_email_template_is_stored_as_given_and_escaped_in_pages(client, acme):
    response = client.put(
        "/api/admin/v1/activation/settings",
        data=json.dumps({"email_subject": SCRIPT[:150]}),
        content_type="application/json",
        headers=bearer(acme.admin_token),
    )
    sign_in(client, acme)
    page = client.get("/settings")

    assert response.status_code in (200, 400)
    assert page.status_code == 200
    assert "<script>alert" not in page.content.decode()
