"""Fault fixtures: the threat personas, and an integration of either product after one
complete sync, with what the console held at that moment.

Personas: Iris (an iPhone in the Core's Executives group), Carl (a device in the Cloud's
Executives group).
"""

import pytest

from bastion.inventory.models import Device
from tests.conftest import CLOUD_GROUPS, CORE_LABELS, add_integration, sync
from tests.threats.conftest import _fast_settings, carl, iris  # noqa: F401 - fixtures

DEVICE_PAGES = {"core": "/api/v2/devices", "cloud": "/api/v1/device"}


@pytest.fixture(params=["core", "cloud"])
def synced(request, tenant, emulator):
    """(product, integration) after one complete sync."""
    product = request.param
    names = CORE_LABELS if product == "core" else CLOUD_GROUPS
    integration = add_integration(tenant, emulator, product, names)
    run = sync(integration)
    assert run.status == "done", run.error
    return product, integration


def inventory(integration) -> list[tuple[str, int]]:
    """(MDM id, console group) of every device the integration holds."""
    rows = Device.objects.filter(integration=integration).exclude(state=Device.REMOVED)
    return sorted(rows.values_list("mdm_id", "group_id"))


def device_rows(integration) -> int:
    return Device.objects.filter(integration=integration).count()
