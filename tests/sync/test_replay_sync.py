"""A complete sync from recorded MDM answers, with no fleet behind them."""

from pathlib import Path

import pytest

from bastion.inventory.models import Device
from bastion.mdm.services import build_connector, resolve_groups
from emulators.mobileiron.server import start_emulator
from tests.conftest import sync

RECORDED = Path(__file__).resolve().parents[2] / "emulators/mobileiron/recordings/basic"


@pytest.fixture
def replay():
    handle = start_emulator(None, replay=RECORDED)
    yield handle
    handle.stop()


@pytest.mark.parametrize(
    ("product", "username", "space", "names"),
    [
        ("core", "admin", "1", ["Executives", "Sales", "Engineering"]),
        ("cloud", "admin@acme.example", "100001", ["Executives", "Sales Team", "iOS Devices"]),
    ],
)
def test_a_whole_sync_runs_from_recorded_answers(tenant, replay, product, username, space, names):
    from bastion.mdm.services import IntegrationSettings, create_integration

    url = replay.base_url(product)
    connector = build_connector(product, url, username, "secret")
    groups = resolve_groups(connector.list_groups(space), names)
    connector.close()
    values = IntegrationSettings(
        kind=product, name=f"Recorded {product}", url=url, username=username,
        password="secret", space_id=space,
    )  # fmt: skip
    integration = create_integration(tenant, values, groups)

    run = sync(integration)

    assert run.status == "done", run.error
    assert run.added > 0
    assert Device.objects.filter(integration=integration).count() == run.added
