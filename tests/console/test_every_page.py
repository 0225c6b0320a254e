"""Every page of the console opens for an administrator of a tenant with devices."""

import pytest
from django.urls import reverse

from tests.console.conftest import make_devices

PAGES = ["dashboard", "threats", "policy", "devices", "users", "apps", "profiles", "os_risk",
         "tenant_settings", "audit_log", "mdm_list", "mdm_add"]  # fmt: skip


@pytest.mark.parametrize("name", PAGES)
def test_page_opens_and_names_itself_in_the_navigation(admin_client, tenant, name):
    make_devices(tenant, 3)

    response = admin_client.get(reverse(f"console:{name}"))

    assert response.status_code == 200
    assert 'aria-current="page"' in response.content.decode() or name == "mdm_add"
