"""The device and admin APIs fuzzed from their own OpenAPI documents, in-process through
the WSGI application: valid and invalid inputs alike, never a 500, never a stored change
in another tenant."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from bastion.wsgi import application
from tests.security.world import snapshot

EXAMPLES = 10


def _load(path: str):
    config = SchemathesisConfig()
    config.projects.default.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        deterministic=True,
    )
    return schemathesis.openapi.from_wsgi(path, application, config=config)


device_schema = _load("/api/device/v1/openapi.json")
admin_schema = _load("/api/admin/v1/openapi.json")

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(autouse=True)
def _one_connection_per_test():
    """Keeps the test's transaction open across requests, as Django's test client does:
    the WSGI handler would otherwise close the connection at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def before(globex):
    return snapshot(globex)


def _check(case, token: str, globex, before):
    response = case.call(headers={"Authorization": f"Bearer {token}"})

    assert response.status_code < 500, (
        f"{case.operation.label} answered {response.status_code}: {response.text[:500]}"
    )
    assert snapshot(globex) == before, f"{case.operation.label} changed another tenant's data"


@device_schema.parametrize()
@FUZZ
def test_the_device_api_never_fails_with_a_500(case, acme, globex, before):
    _check(case, acme.device_token, globex, before)


@admin_schema.parametrize()
@FUZZ
def test_the_admin_api_never_fails_with_a_500(case, acme, globex, before):
    _check(case, acme.admin_token, globex, before)
