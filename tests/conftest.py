"""Shared fixtures: a tenant, a running MobileIron emulator, and integrations against it.

Personas: the tenant "Acme Mobile" with its administrator alice; a Core whose selected
labels are Executives > Sales > Engineering, and a Cloud whose selected device groups
(default space) are Executives > Sales Team > iOS Devices.
"""

import pytest

from bastion.mdm.connectors.base import MdmGroup
from emulators.mobileiron import fleet as fleets
from emulators.mobileiron.server import start_emulator

# Django-dependent imports stay inside the fixtures, so the emulator's and connectors'
# own tests can run without Django (`-p no:django`).

CORE_LABELS = ["Executives", "Sales", "Engineering"]
CLOUD_GROUPS = ["Executives", "Sales Team", "iOS Devices"]


@pytest.fixture(autouse=True)
def _allow_http_mdm(request):
    # The emulator speaks plain http on loopback; production refuses http by default.
    if request.config.pluginmanager.hasplugin("django"):
        request.getfixturevalue("settings").BASTION_ALLOW_HTTP_MDM = True


@pytest.fixture
def tenant(db):
    from bastion.tenancy.services import create_tenant

    return create_tenant("Acme Mobile")


@pytest.fixture
def make_emulator():
    started = []

    def make(devices: int = 60, seed: int = 7, **options):
        fleet = fleets.generate_fleet(devices=devices, seed=seed, **options)
        handle = start_emulator(fleet)
        handle.fleet = fleet
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture
def emulator(make_emulator):
    return make_emulator()


def groups_named(handle, product: str, names: list[str], space: int | None = None):
    """The emulator's groups by name, as the connector would list them."""
    if product == "core":
        listed = {label.name: label for label in handle.fleet.core.labels}
        return [MdmGroup(id=str(listed[name].id), name=name) for name in names]

    wanted_space = space or default_cloud_space(handle)
    listed = {
        group.name: group for group in handle.fleet.cloud.groups if group.space == wanted_space
    }
    return [MdmGroup(id=str(listed[name].id), name=name) for name in names]


def default_cloud_space(handle) -> int:
    return next(space.id for space in handle.fleet.cloud.spaces if space.default)


def add_integration(tenant, handle, product: str, names: list[str], **overrides):
    from bastion.mdm.services import IntegrationSettings, create_integration

    username = "admin" if product == "core" else "admin@acme.example"
    space = ""
    if product == "cloud":
        space = str(default_cloud_space(handle))
    values = IntegrationSettings(
        kind=product,
        name=overrides.pop("name", f"{product.title()} EU"),
        url=handle.base_url(product),
        username=username,
        password=overrides.pop("password", "secret"),
        space_id=overrides.pop("space_id", space or "1"),
        space_name=overrides.pop("space_name", "Global" if product == "core" else "Default"),
        **overrides,
    )
    return create_integration(tenant, values, groups_named(handle, product, names))


@pytest.fixture
def core_integration(tenant, emulator):
    return add_integration(tenant, emulator, "core", CORE_LABELS)


@pytest.fixture
def cloud_integration(tenant, emulator):
    return add_integration(tenant, emulator, "cloud", CLOUD_GROUPS)


def sync(integration):
    from bastion.mdm.services import connector_for
    from bastion.mdm.sync import SyncEngine

    connector = connector_for(integration, retries=3, backoff=0.05)
    try:
        return SyncEngine(integration, connector).run()
    finally:
        connector.close()


@pytest.fixture
def synced_core(core_integration):
    run = sync(core_integration)
    assert run.status == "done", run.error
    return core_integration


@pytest.fixture
def synced_cloud(cloud_integration):
    run = sync(cloud_integration)
    assert run.status == "done", run.error
    return cloud_integration
