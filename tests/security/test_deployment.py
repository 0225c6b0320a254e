"""Security headers, secure cookies, CSRF on every form, and Django's deployment check in
the distributed settings."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from bastion.console.middleware import POLICY
from tests.security.conftest import bearer, sign_in
from tests.security.world import PASSWORD

TEMPLATES = Path(__file__).resolve().parents[2] / "bastion" / "console" / "templates"


def distributed_env(tmp_path) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BASTION_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bastion.settings",
        BASTION_DATA_DIR=str(tmp_path),
        BASTION_PUBLIC_URL="https://bastion.example.com",
        BASTION_SECRET_KEY="k" * 20 + Fernet.generate_key().decode(),
        BASTION_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        BASTION_DATABASE_URL="postgres://bastion@db.internal:5432/bastion",
        BASTION_BROKER_URL="redis://redis.internal:6379/0",
    )
    return env


def test_the_deployment_check_is_clean_in_the_distributed_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        env=distributed_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


SERVED_OVER_TLS = textwrap.dedent(
    """
    import json
    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_HOST="bastion.example.com")
    secure = client.get("/sign-in", secure=True)
    plain = client.get("/sign-in")
    probe = client.get("/health")
    print(json.dumps({
        "hsts": secure.headers.get("Strict-Transport-Security", ""),
        "plain": [plain.status_code, plain.headers.get("Location", "")],
        "probe": probe.status_code,
        "csrf_cookie": str(secure.cookies.get("csrftoken", "")),
    }))
    """
)


def test_served_over_tls_browsers_are_held_to_https(tmp_path):
    env = distributed_env(tmp_path)
    env.pop("BASTION_DATABASE_URL")
    env.pop("BASTION_BROKER_URL")

    result = subprocess.run(
        [sys.executable, "-c", SERVED_OVER_TLS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "max-age=31536000" in seen["hsts"] and "includeSubDomains" in seen["hsts"]
    assert seen["plain"] == [301, "https://bastion.example.com/sign-in"]
    assert seen["probe"] == 200
    assert "secure" in seen["csrf_cookie"].lower()


@pytest.mark.parametrize("url", ["/sign-in", "/api/admin/v1/threat-catalog", "/health"])
def test_every_response_carries_the_browser_protections(client, acme, url):
    sign_in(client, acme)

    response = client.get(url)

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = response["Content-Security-Policy"]
    assert policy == POLICY
    script_src = re.search(r"script-src ([^;]+)", policy).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in policy


def test_console_pages_have_no_inline_script(client, acme):
    sign_in(client, acme)
    pages = ["/", "/devices", "/users", "/apps", "/profiles", "/threats", "/policy", "/mdm",
             "/audit", "/settings", f"/mdm/{acme.integration.pk}"]  # fmt: skip

    for page in pages:
        html = client.get(page).content.decode()

        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), f"{page} has inline script"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{page} has an inline event handler"


def test_every_post_form_in_the_console_carries_a_csrf_token():
    forms = 0
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for form in re.findall(r"<form\b.*?</form>", text, flags=re.S | re.I):
            if re.search(r"method=\"?post", form, flags=re.I):
                forms += 1
                assert "{% csrf_token %}" in form, f"{template.name}: a POST form without CSRF"

    assert forms >= 5


def test_a_console_post_without_its_csrf_token_is_refused(acme):
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, acme)

    response = browser.post(f"/mdm/{acme.integration.pk}/sync")

    assert response.status_code == 403


def test_an_admin_api_change_through_the_session_needs_the_csrf_token(acme):
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, acme)

    through_session = browser.post(f"/api/admin/v1/threat-actions/{acme.action.pk}/retry")
    with_token = Client(enforce_csrf_checks=True).post(
        f"/api/admin/v1/threat-actions/{acme.action.pk}/retry", headers=bearer(acme.admin_token)
    )

    assert through_session.status_code == 403
    assert with_token.status_code == 200


def test_the_session_cookie_is_http_only_and_same_site(client, acme):
    response = client.post("/sign-in", {"username": acme.admin.username, "password": PASSWORD})

    cookie = response.cookies["sessionid"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
