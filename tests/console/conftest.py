"""Console personas: alice administers Acme Mobile, rob only reads it, and mallory
administers another tenant, Globex, which must stay invisible to the other two."""

import pytest

from bastion.api.auth import SESSION_TENANT_KEY
from bastion.inventory.models import ConsoleGroup, Device, DeviceUser
from bastion.tenancy.models import Membership
from bastion.tenancy.services import create_administrator, create_tenant

PASSWORD = "correct horse battery 9"


@pytest.fixture
def other_tenant(db):
    return create_tenant("Globex")


@pytest.fixture
def alice(tenant):
    return create_administrator(tenant, "alice", PASSWORD, Membership.ADMIN)


@pytest.fixture
def rob(tenant):
    return create_administrator(tenant, "rob", PASSWORD, Membership.READ_ONLY)


@pytest.fixture
def mallory(other_tenant):
    return create_administrator(other_tenant, "mallory", PASSWORD, Membership.ADMIN)


def signed_in(client, user, tenant):
    client.force_login(user)
    session = client.session
    session[SESSION_TENANT_KEY] = tenant.pk
    session.save()
    return client


@pytest.fixture
def admin_client(client, alice, tenant):
    return signed_in(client, alice, tenant)


@pytest.fixture
def read_only_client(client, rob, tenant):
    return signed_in(client, rob, tenant)


def make_devices(tenant, count, *, prefix="dev", state=Device.ACTIVE, platform=Device.IOS, **extra):
    group = ConsoleGroup.default_for(tenant)
    user = DeviceUser.objects.create(
        tenant=tenant, user_key=f"{prefix}-user", email=f"{prefix}@example.com", first_name="Pat"
    )
    return Device.objects.bulk_create(
        [
            Device(
                tenant=tenant,
                group=group,
                user=user,
                mdm_id=f"{prefix}-{index}",
                name=f"{prefix} {index}",
                platform=platform,
                os_version=f"17.{index % 5}",
                state=state,
                **extra,
            )
            for index in range(count)
        ]
    )
