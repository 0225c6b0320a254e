"""Secrets: MDM passwords and activation tokens encrypted at rest and never shown back,
device credentials random, hashed, compared in constant time and revocable, key rotation."""

import base64
import hashlib
import inspect
import logging
import re

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.contrib.auth import authenticate
from django.db import connection

from bastion import crypto
from bastion.activation.models import ActivationToken
from bastion.api.models import AdminToken, DeviceCredential
from bastion.inventory.models import DeviceUser
from bastion.mdm.models import Integration
from bastion.security.secrets import ENCRYPTED_FIELDS
from bastion.tenancy.models import AuditEntry
from tests.conftest import add_integration, sync
from tests.security.conftest import bearer, sign_in
from tests.security.helpers import cli, rows_containing
from tests.security.test_isolation import ID_ROUTES, NO_ID_ROUTES, fill
from tests.security.world import MDM_PASSWORD

# Routes whose purpose is to show a code or link in full to an administrator; each view
# must be audited (see test_full_views_of_activation_secrets_are_audited).
REVEALS = {
    "mdm/<int:integration_id>/activation",
    "mdm/<int:integration_id>/activation/files/<str:name>",
    "api/admin/v1/integrations/<integration_id>/activation/code",
    "api/admin/v1/integrations/<integration_id>/activation/link",
    "api/admin/v1/integrations/<integration_id>/activation/files/<name>",
}


@pytest.fixture
def keys(settings):
    """Lets a test change BASTION_ENCRYPTION_KEYS; the cached cipher follows."""
    original = list(settings.BASTION_ENCRYPTION_KEYS)

    def use(*values):
        settings.BASTION_ENCRYPTION_KEYS = list(values)
        crypto._fernet.cache_clear()

    yield use
    settings.BASTION_ENCRYPTION_KEYS = original
    crypto._fernet.cache_clear()


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_the_mdm_password_is_stored_only_encrypted(acme):
    stored = raw("mdm_integration", "password_encrypted", acme.integration.pk)

    assert MDM_PASSWORD["acme"] not in stored
    assert crypto.decrypt(stored) == MDM_PASSWORD["acme"]
    assert rows_containing(MDM_PASSWORD["acme"]) == []


def test_activation_codes_and_links_are_stored_only_encrypted(acme):
    for token in (acme.code, acme.link):
        stored = raw("activation_activationtoken", "token_encrypted", token.pk)

        assert token.token not in stored
        assert crypto.decrypt(stored) == token.token
        assert rows_containing(token.token) == []


def test_every_encrypted_field_is_rotated_by_rotate_secrets():
    declared = {
        (model._meta.label, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.name.endswith("_encrypted")
    }

    assert declared == set(ENCRYPTED_FIELDS), (
        "add every *_encrypted field to bastion.security.secrets.ENCRYPTED_FIELDS"
    )


def test_rotate_secrets_moves_every_secret_to_the_new_key(acme, keys, settings):
    old = settings.BASTION_ENCRYPTION_KEYS[0]
    new = Fernet.generate_key().decode()
    code, link = acme.code.token, acme.link.token
    keys(new, old)

    result = cli("rotate-secrets")

    assert result.exit_code == 0, result.output
    assert "Re-encrypted 3 secret(s)" in result.output
    keys(new)
    assert Integration.objects.get(pk=acme.integration.pk).password == MDM_PASSWORD["acme"]
    assert ActivationToken.objects.get(pk=acme.code.pk).token == code
    assert ActivationToken.objects.get(pk=acme.link.pk).token == link
    keys(old)
    with pytest.raises(ValueError):
        Integration.objects.get(pk=acme.integration.pk).password  # noqa: B018


def test_rotate_secrets_stops_and_changes_nothing_when_a_value_no_key_opens(acme, keys, settings):
    old = settings.BASTION_ENCRYPTION_KEYS[0]
    before = raw("mdm_integration", "password_encrypted", acme.integration.pk)
    stray = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    ActivationToken.objects.filter(pk=acme.link.pk).update(token_encrypted=stray)
    keys(Fernet.generate_key().decode(), old)

    result = cli("rotate-secrets")

    assert result.exit_code == 1
    assert f"activation.ActivationToken {acme.link.pk}" in result.output
    assert raw("mdm_integration", "password_encrypted", acme.integration.pk) == before


def _own_routes(acme):
    """Every GET route filled with tenant A's own objects, reveals left out."""
    for route in sorted(ID_ROUTES):
        if route in REVEALS:
            continue
        yield fill(route, acme)
    for route, kind in sorted(NO_ID_ROUTES.items()):
        if kind in ("tenant", "public"):
            yield "/" + route


def test_no_page_or_api_answer_shows_the_mdm_password_or_activation_secrets(client, acme):
    secrets = {
        "MDM password": MDM_PASSWORD["acme"],
        "encrypted MDM password": acme.integration.password_encrypted,
        "activation code": acme.code.token,
        "activation link token": acme.link.token,
        "device credential": acme.device_token.split(".")[1],
        "admin token": acme.admin_token.split(".")[1],
    }
    seen = 0

    for url in _own_routes(acme):
        for headers in ({}, bearer(acme.admin_token)):
            if not headers:
                sign_in(client, acme)
            response = client.get(url, headers=headers)
            client.logout()
            seen += response.status_code == 200

            text = response.content.decode(errors="replace")
            for what, value in secrets.items():
                assert value not in text, f"GET {url} shows the {what}"

    assert seen > 20


def test_the_command_line_never_prints_the_mdm_password(acme):
    outputs = [
        cli("mdm", "list", "--tenant", acme.tenant.name, "--json").output,
        cli("mdm", "list", "--tenant", acme.tenant.name).output,
        cli("tenant", "list", "--json").output,
    ]

    for output in outputs:
        assert acme.integration.name in output or acme.tenant.name in output
        assert MDM_PASSWORD["acme"] not in output
        assert acme.integration.password_encrypted not in output


def test_full_views_of_activation_secrets_are_audited(client, acme):
    def views():
        return AuditEntry.objects.filter(tenant=acme.tenant, action__endswith="_viewed").count()

    for route in ("code", "link"):
        before = views()
        response = client.get(
            f"/api/admin/v1/integrations/{acme.integration.pk}/activation/{route}",
            headers=bearer(acme.admin_token),
        )

        assert response.status_code == 200
        assert views() == before + 1
        entry = AuditEntry.objects.filter(tenant=acme.tenant).order_by("-pk").first()
        assert entry.actor == acme.admin.username and entry.source_ip == "127.0.0.1"
        assert acme.code.token not in str(entry.detail)
        assert acme.link.token not in str(entry.detail)


def test_the_activation_overview_shows_only_a_preview(client, acme):
    response = client.get(
        f"/api/admin/v1/integrations/{acme.integration.pk}/activation",
        headers=bearer(acme.admin_token),
    )

    assert response.status_code == 200
    assert acme.code.token not in response.content.decode()
    assert response.json()["code"]["preview"].endswith("…")


def test_device_credentials_are_random_and_stored_only_as_a_hash(acme):
    credential, token = DeviceCredential.issue(acme.device)
    _, other = DeviceCredential.issue(acme.device)
    prefix, secret = token.split(".")

    assert token != other
    assert len(secret) >= 43  # 32 random bytes, url-safe base64
    assert credential.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert rows_containing(secret) == []


def test_tokens_are_compared_in_constant_time():
    for model in (DeviceCredential, AdminToken):
        source = inspect.getsource(model.authenticate)

        assert "hmac.compare_digest(" in source
        assert not re.search(r"(hash|secret)\w*\)?\s*[!=]=", source)


def test_a_revoked_device_credential_is_refused(client, acme):
    before = client.get("/api/device/v1/matrix", headers=bearer(acme.device_token))

    DeviceCredential.revoke_for([acme.device.pk])
    after = client.get("/api/device/v1/matrix", headers=bearer(acme.device_token))

    assert before.status_code == 200
    assert after.status_code == 401


@pytest.mark.parametrize(
    "token",
    ["", ".", "x" * 12 + ".", "not-a-token", "a" * 12 + "." + "b" * 500, "\u00e9" * 12 + ".x"],
)
def test_malformed_device_credentials_are_refused(client, acme, token):
    response = client.get("/api/device/v1/matrix", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


def test_a_credential_with_the_right_prefix_and_a_wrong_secret_is_refused(client, acme):
    prefix = acme.device_token.split(".")[0]

    response = client.get("/api/device/v1/matrix", headers=bearer(f"{prefix}.{'A' * 43}"))

    assert response.status_code == 401


def test_synced_users_can_never_sign_in(client, synced_core, tenant):
    users = list(DeviceUser.objects.filter(tenant=tenant).exclude(email="")[:5])
    password = tenant.default_synced_password()

    assert users, "the sync brought in no user to try"
    for user in users:
        assert authenticate(username=user.email, password=password) is None
        page = client.post("/sign-in", {"username": user.email, "password": password})
        assert page.status_code == 401
        assert "_auth_user_id" not in client.session
        for header in (
            f"Bearer {user.email}:{password}",
            f"Bearer {password}",
            "Basic " + base64.b64encode(f"{user.email}:{password}".encode()).decode(),
        ):
            answer = client.get("/api/device/v1/matrix", headers={"Authorization": header})
            assert answer.status_code == 401
            answer = client.get("/api/admin/v1/threat-events", headers={"Authorization": header})
            assert answer.status_code == 401
        assert password not in user.password_hash


def test_the_mdm_password_never_reaches_the_logs_errors_or_audit(caplog, tenant, emulator):
    wrong = "W r0ng-and-secret!"
    good = add_integration(tenant, emulator, "core", ["Executives"], name="Core Good")
    bad = add_integration(tenant, emulator, "core", ["Executives"], name="Core Bad", password=wrong)

    with caplog.at_level(logging.DEBUG):
        sync(good)
        failed = sync(bad)

    bad.refresh_from_db()
    assert failed.status == "failed"
    text = caplog.text + failed.error + bad.last_error + str(failed.messages)
    for value in (wrong, "secret", good.password_encrypted, bad.password_encrypted):
        assert value not in text
    audit = str(list(AuditEntry.objects.values_list("detail", flat=True)))
    assert wrong not in audit


def test_logs_carry_no_names_or_emails_at_any_level(caplog, tenant, emulator):
    integration = add_integration(tenant, emulator, "core", ["Executives", "Sales", "Engineering"])

    with caplog.at_level(logging.DEBUG):
        run = sync(integration)

    assert run.status == "done", run.error
    stored = list(DeviceUser.objects.filter(tenant=tenant).exclude(email=""))
    assert stored
    ours = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("emulators")
    )
    for user in stored:
        assert user.email not in ours
        assert f"{user.first_name} {user.last_name}" not in ours


def test_read_only_administrators_never_see_activation_secrets_in_full(client, acme):
    from bastion.tenancy.models import Membership
    from bastion.tenancy.services import create_administrator

    reader = create_administrator(acme.tenant, "rita", "correct horse battery 9", "read_only")
    assert Membership.objects.get(user=reader).role == Membership.READ_ONLY
    _, token = AdminToken.issue(reader, acme.tenant)
    base = f"/api/admin/v1/integrations/{acme.integration.pk}/activation"

    answers = [
        client.get(f"{base}/{what}", headers=bearer(token)).status_code
        for what in ("code", "link", "files/android-xml")
    ]
    overview = client.get(base, headers=bearer(token))

    assert answers == [403, 403, 403]
    assert overview.status_code == 200
    assert acme.code.token not in overview.content.decode()
    assert acme.link.token not in overview.content.decode()
