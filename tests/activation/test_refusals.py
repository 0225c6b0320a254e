"""Bad, stale and foreign activations: a clear error, and nothing stored changes."""

from datetime import UTC, datetime, timedelta

import pytest

from bastion.activation import engine, services, tokens
from bastion.activation.models import ActivationToken, AdhocLookup
from bastion.api.models import DeviceCredential
from bastion.inventory.models import Device
from tests.activation.conftest import code_of, core_device_in, link_token
from tests.conftest import add_integration


def _snapshot():
    return (
        list(Device.objects.order_by("pk").values_list("pk", "state", "agent_kind")),
        DeviceCredential.objects.count(),
        AdhocLookup.objects.count(),
    )


@pytest.fixture
def uuid(synced_core, emulator):
    return core_device_in(emulator, "Sales")


def test_an_unknown_token_is_refused(synced_core, uuid, device_client):
    before = _snapshot()

    response = device_client("/activate", {"token": "made-up", "mdm_id": uuid})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert _snapshot() == before


def test_a_forged_code_is_refused(synced_core, uuid, device_client):
    forged = code_of(synced_core)[:-3] + "abc"

    response = device_client("/activate", {"activation_code": forged, "mdm_id": uuid})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_rotating_the_code_ends_activations_with_the_old_one_only(
    synced_core, emulator, uuid, device_client
):
    old = code_of(synced_core)
    active = device_client("/activate", {"activation_code": old, "mdm_id": uuid}).json()
    other = core_device_in(emulator, "Engineering")

    services.rotate_code(synced_core, "alice")
    refused = device_client("/activate", {"activation_code": old, "mdm_id": other})
    accepted = device_client(
        "/activate", {"activation_code": code_of(synced_core), "mdm_id": other}
    )

    assert refused.status_code == 401
    assert accepted.status_code == 200
    assert DeviceCredential.authenticate(active["credential"]) is not None


def test_regenerating_the_link_ends_the_old_link_not_its_devices(
    synced_core, emulator, uuid, device_client
):
    old = link_token(synced_core)
    active = device_client("/activate", {"token": old, "mdm_id": uuid}).json()

    services.regenerate_link(synced_core, "alice", days=7)
    refused = device_client(
        "/activate", {"token": old, "mdm_id": core_device_in(emulator, "Engineering")}
    )

    assert refused.status_code == 401
    assert DeviceCredential.authenticate(active["credential"]) is not None


def test_an_expired_link_says_so_and_changes_nothing(synced_core, uuid, device_client):
    token = link_token(synced_core)
    ActivationToken.objects.filter(integration=synced_core, kind="link").update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    before = _snapshot()

    response = device_client("/activate", {"token": token, "mdm_id": uuid})

    assert response.status_code == 401
    assert response.json()["error"] == "expired_token"
    assert _snapshot() == before


def test_expiry_is_exact_to_the_second_across_a_daylight_saving_change(synced_core):
    # Paris springs forward on 2025-03-30 at 02:00; 09:00 that day is 07:00 UTC.
    asked_on = datetime(2025, 3, 28, 12, 0, tzinfo=UTC)
    expiry = tokens.parse_expiry("2025-03-30T09:00:00", None, "Europe/Paris", now=asked_on)
    link = tokens.replace(synced_core, ActivationToken.LINK, "alice", expires_at=expiry)

    assert expiry == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    assert tokens.resolve_link(link.token, now=expiry - timedelta(seconds=1)) == link
    with pytest.raises(tokens.TokenExpired):
        tokens.resolve_link(link.token, now=expiry)


def test_a_days_expiry_counts_real_elapsed_time_over_the_change(synced_core):
    asked_on = datetime(2025, 10, 25, 22, 30, 15, tzinfo=UTC)

    expiry = tokens.parse_expiry(None, 2, None, now=asked_on)

    assert expiry - asked_on == timedelta(days=2)
    assert expiry.tzinfo is not None


@pytest.mark.parametrize(
    "value, days, zone, field",
    [
        ("tomorrow", None, None, "expires_at"),
        ("2020-01-01T00:00:00+00:00", None, None, "expires_at"),
        (None, 0, None, "days"),
        ("2030-01-01T00:00:00", None, "Mars/Olympus", "time_zone"),
        ("2030-01-01T00:00:00", 3, None, "expires_at"),
    ],
)
def test_a_bad_expiry_names_its_field(synced_core, value, days, zone, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        tokens.parse_expiry(value, days, zone)


def test_a_token_sent_with_another_tenants_id_is_refused(synced_core, uuid, device_client, globex):
    before = _snapshot()

    response = device_client(
        "/activate",
        {"token": link_token(synced_core), "mdm_id": uuid, "tenantid": globex.tenant_id},
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert _snapshot() == before


def test_another_tenants_device_looks_like_any_unknown_device(
    synced_core, emulator, uuid, device_client, globex
):
    other = add_integration(globex, emulator, "core", ["Engineering"], name="Globex Core")
    unknown = "00000000-0000-4000-8000-000000000000"

    theirs = device_client("/activate", {"uuid": uuid, "tenantid": globex.tenant_id})
    nobody = device_client("/activate", {"uuid": unknown, "tenantid": globex.tenant_id})

    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json() == nobody.json()
    assert not Device.objects.filter(integration=other).exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "tenantid"),
        ({"tenantid": "x"}, "uuid"),
        ({"token": "abc"}, "mdm_id"),
        ({"token": "abc", "activation_code": "def", "mdm_id": "1"}, "activation_code"),
    ],
)
def test_a_malformed_request_names_the_missing_field(synced_core, device_client, body, field):
    before = _snapshot()

    response = device_client("/activate", body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert _snapshot() == before


def test_an_id_of_no_known_shape_is_refused_before_asking_the_mdm(
    synced_core, device_client, emulator
):
    before = _snapshot()

    response = device_client(
        "/activate", {"token": link_token(synced_core), "mdm_id": "'; DROP TABLE--"}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "mdm_id"
    assert _snapshot() == before


def test_a_cloud_id_on_a_core_link_is_refused(synced_core, device_client):
    response = device_client("/activate", {"token": link_token(synced_core), "mdm_id": "1000001"})

    assert response.status_code == 400
    assert response.json()["field"] == "mdm_id"


def test_an_oversized_field_is_refused(synced_core, device_client):
    response = device_client("/activate", {"token": "x" * 5000, "mdm_id": "1"})

    assert response.status_code in (400, 422)
    assert "token" in response.content.decode()


def test_a_config_for_another_address_is_refused(synced_core, uuid, device_client):
    response = device_client(
        "/activate",
        {"uuid": uuid, "tenantid": synced_core.tenant.tenant_id, "defaultchannel": "https://evil"},
    )

    assert response.status_code == 400
    assert response.json()["field"] == "defaultchannel"


def test_an_unknown_tenant_id_is_refused(synced_core, uuid, device_client):
    response = device_client("/activate", {"uuid": uuid, "tenantid": "0" * 16})

    assert response.status_code == 401
    assert response.json()["field"] == "tenantid"


def test_a_flood_of_unknown_ids_is_rate_limited(core_integration, device_client, settings):
    settings.BASTION_ADHOC_SYNCS_PER_MINUTE = 2
    token = link_token(core_integration)

    answers = [
        device_client(
            "/activate", {"token": token, "mdm_id": f"00000000-0000-4000-8000-00000000000{i}"}
        )
        for i in range(3)
    ]

    assert [a.status_code for a in answers] == [404, 404, 429]
    assert AdhocLookup.objects.count() == 2


def test_an_unreachable_mdm_asks_the_agent_to_try_again(tenant, device_client, settings):
    from bastion.mdm.connectors.base import MdmGroup
    from bastion.mdm.services import IntegrationSettings, create_integration

    settings.BASTION_ADHOC_TIMEOUT = 1
    dead = create_integration(
        tenant,
        IntegrationSettings(
            kind="core", name="Dead", url="http://127.0.0.1:9", username="u", password="p"
        ),
        [MdmGroup(id="5", name="Sales")],
    )

    response = device_client(
        "/activate",
        {"token": link_token(dead), "mdm_id": "00000000-0000-4000-8000-000000000000"},
    )

    assert response.status_code == 503
    assert not Device.objects.exists()


def test_the_engine_refuses_an_unknown_method(synced_core):
    with pytest.raises(engine.ActivationError) as caught:
        engine.activate(engine.Request(method="telepathy", mdm_id="1"))

    assert caught.value.status == 400
