"""Tenant isolation: every URL of the project, walked as tenant A's administrator (console
session and admin token) and as tenant A's device, against tenant B's objects.

A route this file does not know fails the suite: add it to ID_ROUTES (how to fill each
parameter with one of tenant B's objects) or to NO_ID_ROUTES (why it takes no object id).
"""

import json
import re

import pytest
from django.urls import URLResolver, get_resolver

from bastion.activation import files
from bastion.api.admin import api as admin_api
from bastion.api.device import api as device_api
from tests.security.conftest import bearer, sign_in
from tests.security.world import snapshot

PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
# 405: the route does not take this method at all, so nothing of tenant B's was touched.
REFUSED = {403, 404, 405}
# A caller with the wrong kind of credential may also be told it is not signed in.
NOT_YOURS = {401, *REFUSED}
FILE_NAME = next(iter(files.FILES))

# Route → (parameter → tenant B's value, request body for POST/PUT).
ID_ROUTES = {
    "devices/<int:device_id>": ({"device_id": lambda b: b.device.pk}, {}),
    "mdm/<int:integration_id>": ({"integration_id": lambda b: b.integration.pk}, {}),
    "mdm/<int:integration_id>/edit": (
        {"integration_id": lambda b: b.integration.pk},
        {"name": "renamed", "url": "https://evil.example", "username": "x"},
    ),
    "mdm/<int:integration_id>/groups": ({"integration_id": lambda b: b.integration.pk}, {}),
    "mdm/<int:integration_id>/remove": (
        {"integration_id": lambda b: b.integration.pk},
        {"confirm": "on", "undo_actions": "on"},
    ),
    "mdm/<int:integration_id>/sync": ({"integration_id": lambda b: b.integration.pk}, {}),
    "mdm/<int:integration_id>/progress": ({"integration_id": lambda b: b.integration.pk}, {}),
    "mdm/<int:integration_id>/history": ({"integration_id": lambda b: b.integration.pk}, {}),
    "threats/<int:event_id>": ({"event_id": lambda b: b.event.pk}, {}),
    "threats/<int:event_id>/actions/<int:action_id>/retry": (
        {"event_id": lambda b: b.event.pk, "action_id": lambda b: b.action.pk},
        {},
    ),
    "mdm/<int:integration_id>/activation": ({"integration_id": lambda b: b.integration.pk}, {}),
    "mdm/<int:integration_id>/activation/code": (
        {"integration_id": lambda b: b.integration.pk},
        {},
    ),
    "mdm/<int:integration_id>/activation/link": (
        {"integration_id": lambda b: b.integration.pk},
        {"days": "30"},
    ),
    "mdm/<int:integration_id>/activation/files/<str:name>": (
        {"integration_id": lambda b: b.integration.pk, "name": lambda b: FILE_NAME},
        {},
    ),
    "activation/requests/<int:request_id>": (
        {"request_id": lambda b: b.request.pk},
        {"decision": "approve"},
    ),
    "profiles/<int:profile_id>": ({"profile_id": lambda b: b.profile.pk}, {}),
    "profiles/<int:profile_id>/trust": ({"profile_id": lambda b: b.profile.pk}, {}),
    "profiles/<int:profile_id>/distrust": ({"profile_id": lambda b: b.profile.pk}, {}),
    "api/device/v1/threats/<event_id>/mitigation": (
        {"event_id": lambda b: b.event.agent_event_id},
        {"mitigated_at": "2026-01-05T11:00:00Z"},
    ),
    "api/admin/v1/threat-events/<event_id>": ({"event_id": lambda b: b.event.pk}, {}),
    "api/admin/v1/threat-actions/<action_id>/retry": ({"action_id": lambda b: b.action.pk}, {}),
    "api/admin/v1/matrices/<group>": ({"group": lambda b: b.group.pk}, {}),
    "api/admin/v1/matrices/<group>/rows/<threat_id>": (
        {"group": lambda b: b.group.pk, "threat_id": lambda b: "arp_mitm"},
        {"enabled": False},
    ),
    "api/admin/v1/matrices/<group>/deploy": ({"group": lambda b: b.group.pk}, {}),
    "api/admin/v1/integrations/<integration_id>/activation": (
        {"integration_id": lambda b: b.integration.pk},
        {},
    ),
    "api/admin/v1/integrations/<integration_id>/activation/code": (
        {"integration_id": lambda b: b.integration.pk},
        {},
    ),
    "api/admin/v1/integrations/<integration_id>/activation/code/rotate": (
        {"integration_id": lambda b: b.integration.pk},
        {},
    ),
    "api/admin/v1/integrations/<integration_id>/activation/link": (
        {"integration_id": lambda b: b.integration.pk},
        {},
    ),
    "api/admin/v1/integrations/<integration_id>/activation/link/regenerate": (
        {"integration_id": lambda b: b.integration.pk},
        {"days": 10},
    ),
    "api/admin/v1/integrations/<integration_id>/activation/files/<name>": (
        {"integration_id": lambda b: b.integration.pk, "name": lambda b: FILE_NAME},
        {},
    ),
    "api/admin/v1/integrations/<integration_id>/activation/config-table": (
        {"integration_id": lambda b: b.integration.pk},
        {},
    ),
    "api/admin/v1/activation/requests/<request_id>/approve": (
        {"request_id": lambda b: b.request.pk},
        {},
    ),
    "api/admin/v1/activation/requests/<request_id>/reject": (
        {"request_id": lambda b: b.request.pk},
        {},
    ),
    "api/admin/v1/profiles/<profile_id>": ({"profile_id": lambda b: b.profile.pk}, {}),
    "api/admin/v1/profiles/<profile_id>/trust": ({"profile_id": lambda b: b.profile.pk}, {}),
    "api/admin/v1/profiles/<profile_id>/distrust": ({"profile_id": lambda b: b.profile.pk}, {}),
    "api/admin/v1/malicious-apps/<mark_id>": ({"mark_id": lambda b: b.mark.pk}, {}),
}

# Routes that take no object id, and what they answer: "tenant" routes show the caller's
# tenant's data, so tenant B's names must never appear in them.
NO_ID_ROUTES = {
    "health": "public",
    "ready": "public",
    # Operators' scrape target: loopback or a token only, ids and counts, no tenant data
    # (test_metrics_are_for_operators_and_name_no_tenant_data).
    "metrics": "operator",
    "sign-in": "public",
    "sign-out": "session",
    "tenant": "session",
    "": "tenant",
    "devices": "tenant",
    "users": "tenant",
    "apps": "tenant",
    "profiles": "tenant",
    "os-risk": "tenant",
    "settings": "tenant",
    "audit": "tenant",
    "mdm": "tenant",
    "mdm/add": "tenant",
    "mdm/add/setup": "tenant",
    "mdm/add/groups": "tenant",
    "threats": "tenant",
    "policy": "tenant",
    "settings/activation": "tenant",
    # Changes that name their object in the form, within the caller's tenant
    # (test_changes_naming_tenant_b_objects_in_a_form_touch_only_the_callers_tenant).
    "apps/mark": "form",
    "apps/unmark": "form",
    "api/device/v1/": "public",
    "api/device/v1/openapi.json": "public",
    "api/device/v1/activate": "activation",
    "api/device/v1/activate/pickup": "activation",
    "api/device/v1/reactivate": "device",
    "api/device/v1/matrix": "device",
    "api/device/v1/threats": "device",
    "api/device/v1/threats/batch": "device",
    "api/admin/v1/": "public",
    "api/admin/v1/openapi.json": "public",
    "api/admin/v1/threat-catalog": "tenant",
    "api/admin/v1/threat-events": "tenant",
    "api/admin/v1/activation/requests": "tenant",
    "api/admin/v1/activation/emails": "tenant",
    "api/admin/v1/activation/settings": "tenant",
    "api/admin/v1/profiles": "tenant",
    "api/admin/v1/malicious-apps": "tenant",
}


def all_routes() -> list[str]:
    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return sorted(set(walk(get_resolver())))


def api_methods() -> dict[str, list[str]]:
    """Route → HTTP methods, from both APIs' OpenAPI documents."""
    methods = {}
    for api in (device_api, admin_api):
        for path, operations in api.get_openapi_schema()["paths"].items():
            route = re.sub(r"\{(\w+)\}", r"<\1>", path.lstrip("/"))
            methods[route] = [method.upper() for method in operations]
    return methods


def fill(route: str, side) -> str:
    params, _ = ID_ROUTES[route]
    return "/" + PARAM.sub(lambda match: str(params[match.group(1)](side)), route)


def test_every_route_is_known_to_this_test():
    routes = all_routes()

    unknown = [r for r in routes if r not in ID_ROUTES and r not in NO_ID_ROUTES]
    stale = [r for r in (*ID_ROUTES, *NO_ID_ROUTES) if r not in routes]

    assert not unknown, (
        f"routes without an isolation test: {unknown}. Add each to ID_ROUTES in "
        f"{__file__} (how to fill its ids with tenant B's objects) or to NO_ID_ROUTES."
    )
    assert not stale, f"routes that no longer exist, remove them from {__file__}: {stale}"


def test_routes_with_ids_are_exactly_those_with_parameters():
    with_params = {r for r in all_routes() if PARAM.search(r)}

    assert with_params == set(ID_ROUTES)


def _call(client, method: str, url: str, body: dict, api: bool, headers=None):
    headers = headers or {}
    if method == "GET":
        return client.get(url, headers=headers)
    if api:
        return client.generic(
            method, url, data=json.dumps(body), content_type="application/json", headers=headers
        )
    return client.post(url, body, headers=headers)


def _methods(route: str) -> list[str]:
    if route.startswith("api/"):
        return api_methods()[route]
    return ["GET", "POST"]


@pytest.mark.parametrize("route", sorted(ID_ROUTES))
def test_tenant_a_cannot_reach_tenant_b_objects(client, acme, globex, route):
    before = snapshot(globex)
    url = fill(route, globex)
    _, body = ID_ROUTES[route]
    api = route.startswith("api/")
    answers = []

    for method in _methods(route):
        if route.startswith("api/admin/"):
            sign_in(client, acme)
            answers.append(("session", method, _call(client, method, url, body, api), REFUSED))
            client.logout()
            for who, token in (("admin token", acme.admin_token), ("device", acme.device_token)):
                response = _call(client, method, url, body, api, bearer(token))
                answers.append((who, method, response, REFUSED if who != "device" else NOT_YOURS))
        elif route.startswith("api/device/"):
            for who, token in (("device", acme.device_token), ("admin token", acme.admin_token)):
                response = _call(client, method, url, body, api, bearer(token))
                answers.append((who, method, response, REFUSED if who == "device" else NOT_YOURS))
        else:
            sign_in(client, acme)
            answers.append(("session", method, _call(client, method, url, body, api), REFUSED))
            client.logout()
            response = _call(client, method, url, body, api, bearer(acme.device_token))
            signed_out = response.status_code == 302 and "sign-in" in response["Location"]
            assert signed_out or response.status_code == 405, (
                f"{method} {url} as a device: {response.status_code}"
            )

    for who, method, response, expected in answers:
        text = response.content.decode(errors="replace")
        assert response.status_code in expected, (
            f"{method} {url} as tenant A's {who}: {response.status_code} {text[:300]}"
        )
        # An id the caller sent may be echoed back in the refusal: that tells it nothing.
        for name in (n for n in globex.names if n not in url):
            assert name not in text, f"{method} {url} as {who} shows tenant B's {name!r}"
    assert snapshot(globex) == before, f"{route} changed tenant B's objects"


def test_the_same_routes_answer_for_the_callers_own_objects(client, acme):
    """The control: with its own ids, tenant A gets through, so the refusals above come
    from the tenant check and not from ids this file filled in wrongly."""
    refused = []

    for route in sorted(ID_ROUTES):
        if "GET" not in _methods(route):
            continue
        url = fill(route, acme)
        if route.startswith("api/device/"):
            response = client.get(url, headers=bearer(acme.device_token))
        elif route.startswith("api/"):
            response = client.get(url, headers=bearer(acme.admin_token))
        else:
            sign_in(client, acme)
            response = client.get(url)
        # Anything but a refusal: a page may still answer 400 because the fake MDM is down.
        if response.status_code in (401, 403, 404):
            refused.append(f"GET {url}: {response.status_code}")

    assert refused == []


@pytest.mark.parametrize("route", sorted(r for r, kind in NO_ID_ROUTES.items() if kind == "tenant"))
def test_tenant_pages_and_lists_show_only_the_callers_tenant(client, acme, globex, route):
    url = "/" + route
    callers = [("session", {})]
    if route.startswith("api/admin/"):
        callers.append(("admin token", bearer(acme.admin_token)))

    for who, headers in callers:
        if who == "session":
            sign_in(client, acme)
        response = client.get(url, headers=headers)
        client.logout()

        text = response.content.decode(errors="replace")
        assert response.status_code in (200, 302), f"GET {url} as {who}: {response.status_code}"
        for name in globex.names:
            assert name not in text, f"GET {url} as tenant A's {who} shows tenant B's {name!r}"


def test_filters_naming_tenant_b_objects_find_nothing(client, acme, globex):
    filters = {
        "device": globex.device.pk,
        "group": globex.group.pk,
    }

    for name, value in filters.items():
        response = client.get(
            "/api/admin/v1/threat-events", {name: value}, headers=bearer(acme.admin_token)
        )

        assert response.status_code in (200, 404, 422), response.content
        if response.status_code == 200:
            assert response.json()["total"] == 0, f"?{name}= shows tenant B's events"


def test_changes_naming_tenant_b_objects_in_a_form_touch_only_the_callers_tenant(
    client, acme, globex
):
    before = snapshot(globex)
    sign_in(client, acme)
    form = {"platform": globex.mark.platform, "identifier": globex.mark.identifier}

    answers = [client.post("/" + route, form) for route, kind in NO_ID_ROUTES.items()
               if kind == "form"]  # fmt: skip

    assert all(answer.status_code < 500 for answer in answers)
    assert snapshot(globex) == before


def test_a_device_sees_only_its_own_group_matrix_and_events(client, acme, globex):
    response = client.get("/api/device/v1/matrix", headers=bearer(acme.device_token))
    stored = client.post(
        "/api/device/v1/threats",
        {
            "event_id": globex.event.agent_event_id,
            "threat_id": "arp_mitm",
            "detected_at": "2026-01-05T10:00:00Z",
        },
        content_type="application/json",
        headers=bearer(acme.device_token),
    )

    assert response.status_code == 200
    assert stored.status_code == 200, stored.content
    globex.event.refresh_from_db()
    assert globex.event.device_id == globex.device.pk
    assert stored.json()["id"] != globex.event.pk


def test_an_admin_token_only_acts_in_its_own_tenant_even_with_a_session_elsewhere(
    client, acme, globex
):
    sign_in(client, globex)

    response = client.get(
        f"/api/admin/v1/threat-events/{globex.event.pk}", headers=bearer(acme.admin_token)
    )

    assert response.status_code == 404


def test_metrics_are_for_operators_and_name_no_tenant_data(client, acme, globex):
    remote = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    local = client.get("/metrics")

    assert remote.status_code == 403
    assert local.status_code == 200
    text = local.content.decode()
    for name in (*acme.names, *globex.names, acme.tenant.name, globex.tenant.name):
        assert name not in text, f"/metrics shows {name!r}"
