"""Fixtures for threat response: active devices with agent credentials, response targets,
matrix rows, and reads of what the emulated MDM holds.

Personas: Iris has an iPhone in the Core's Executives group; Carl has a device in the
Cloud's Executives group; alice administers the tenant Acme Mobile.
"""

import httpx
import pytest
from django.contrib.auth.models import User

from bastion.api.models import AdminToken, DeviceCredential
from bastion.inventory.models import Device
from bastion.mdm.models import ActionTarget
from bastion.tenancy.models import Membership
from bastion.threats import engine
from bastion.threats.matrix import deploy, matrix_for, set_row


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 1000
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def activate(device: Device, agent: str = Device.AGENT_STANDALONE) -> str:
    device.state = Device.ACTIVE
    device.agent_kind = agent
    device.save(update_fields=["state", "agent_kind"])
    _, token = DeviceCredential.issue(device)
    return token


def pick_device(integration, platform: str | None = None, exclude=()) -> Device:
    devices = Device.objects.filter(integration=integration).exclude(pk__in=exclude)
    if platform:
        devices = devices.filter(platform=platform)
    return devices.select_related("group").order_by("pk").first()


@pytest.fixture
def iris(synced_core):
    device = pick_device(synced_core, "ios")
    device.token = activate(device)
    return device


@pytest.fixture
def carl(synced_cloud):
    device = pick_device(synced_cloud)
    device.token = activate(device)
    return device


def target(integration, name: str) -> ActionTarget:
    return ActionTarget.objects.get(integration=integration, name=name)


def respond(group, threat_id: str, **row) -> None:
    """Sets one matrix row of the group and deploys it."""
    matrix = matrix_for(group)
    set_row(matrix, threat_id, row)
    deploy(matrix, "alice")


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def report(client, device, threat_id: str, event_id: str, **extra):
    body = {
        "event_id": event_id,
        "threat_id": threat_id,
        "detected_at": "2026-01-05T10:00:00Z",
        **extra,
    }
    return client.post(
        "/api/device/v1/threats", body, content_type="application/json", headers=auth(device.token)
    )


def mitigate(client, device, event_id: str, **extra):
    body = {"mitigated_at": "2026-01-05T11:00:00Z", **extra}
    return client.post(
        f"/api/device/v1/threats/{event_id}/mitigation",
        body,
        content_type="application/json",
        headers=auth(device.token),
    )


def deliver_all() -> dict:
    return engine.run_due()


def core_labels(emulator, device) -> set[str]:
    state = httpx.get(f"{emulator.url}/_emulator/state/core/devices/{device.mdm_id}").json()
    return {label["name"] for label in state["labels"]}


def cloud_state(emulator, device) -> dict:
    return httpx.get(f"{emulator.url}/_emulator/state/cloud/devices/{device.mdm_id}").json()


def mdm_requests(emulator, method: str, fragment: str) -> list[dict]:
    log = httpx.get(f"{emulator.url}/_emulator/requests").json()
    entries = log["entries"]
    return [r for r in entries if r.get("method") == method and fragment in r.get("path", "")]


@pytest.fixture
def alice(tenant):
    user = User.objects.create_user("alice", email="alice@acme.example", password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.ADMIN)
    _, token = AdminToken.issue(user, tenant)
    user.token = token
    return user


@pytest.fixture
def reader(tenant):
    user = User.objects.create_user("rita", email="rita@acme.example", password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.READ_ONLY)
    _, token = AdminToken.issue(user, tenant)
    user.token = token
    return user
