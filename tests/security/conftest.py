"""Security personas: tenant A is Acme ("acme" in every name), tenant B is Globex
("globex"). Each has an administrator with a token, an MDM, a device with its credential,
a user, an app, a profile, a threat event with a failed MDM action, a held re-activation,
activation tokens, a sync run and an audit entry."""

import pytest

from bastion.api.auth import SESSION_TENANT_KEY
from bastion.tenancy.services import create_tenant
from tests.security.world import build_side


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 100_000
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def acme(db):
    return build_side(create_tenant("Acme Security"), "acme")


@pytest.fixture
def globex(db):
    return build_side(create_tenant("Globex Security"), "globex")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client, side):
    client.force_login(side.admin)
    session = client.session
    session[SESSION_TENANT_KEY] = side.tenant.pk
    session.save()
    return client
