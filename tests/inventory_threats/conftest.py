"""A small Core fleet built for inventory threats, and ways to change what its devices carry.

Personas: alice administers Acme Mobile (rita only reads); the Core's "Executives" label
holds iPhones, one Android phone, and the static label "MTD High Risk" is the response
target. Profile 0 is the MDM's own; profile 1 is a proxy certificate a user installed
(with markup in its name), and profile 2 has the same identifier under another name.
App 1 is the spyware an administrator will mark.
"""

import time

import httpx
import pytest
from django.contrib.auth.models import User

from bastion.api.models import AdminToken
from bastion.inventory.models import Device
from bastion.mdm.models import ActionTarget
from bastion.tenancy.models import Membership
from bastion.threats import engine
from bastion.threats.matrix import deploy, matrix_for, set_row
from emulators.mobileiron.server import start_emulator
from tests.conftest import add_integration, sync

EXECUTIVES, HIGH_RISK, ENGINEERING = 5, 9, 6
LABEL = "MTD High Risk"
PROXY_ID = "com.charlesproxy.ca"
PROXY_NAME = '<script>alert("x")</script> Charles Proxy CA'
SPYWARE = "com.spyware.agent"

PROFILES = [
    {"identifier": "mi.mdm.profile", "displayName": "Acme MDM", "managed": True},
    {"identifier": PROXY_ID, "displayName": PROXY_NAME, "organization": "XK72", "managed": False},
    {"identifier": PROXY_ID, "displayName": "Proxy certificate", "managed": False},
    {"identifier": "com.nextdns.profile", "displayName": "NextDNS", "managed": False},
]
APPS = [
    {"platform": "IOS", "identifier": "com.microsoft.Office.Outlook", "name": "Outlook"},
    {"platform": "IOS", "identifier": SPYWARE, "name": "Flashlight Pro"},
    {"platform": "ANDROID", "identifier": SPYWARE, "name": "Flashlight Pro"},
]


def fleet(ios: int = 4, profiles=(0,), apps=(0,), label: int = EXECUTIVES) -> dict:
    devices = [
        {
            "id": i + 1,
            "uuid": f"0000{i:04d}-aaaa-4bbb-8ccc-{i:012d}",
            "udid": f"00008110-{i:016d}",
            "serialNumber": f"SER{i:09d}",
            "platform": "iOS",
            "model": "iPhone 15",
            "lastConnectedAt": 1_760_000_000_000,
            "user": 0,
            "apps": list(apps),
            "profiles": list(profiles),
            "labels": [label],
        }
        for i in range(ios)
    ]
    devices.append(
        {
            "id": ios + 1,
            "uuid": "android-0000-4bbb-8ccc-000000000001",
            "platform": "Android",
            "serialNumber": "SERANDROID1",
            "lastConnectedAt": 1_760_000_000_000,
            "user": 0,
            "apps": [2],
            "labels": [EXECUTIVES],
        }
    )
    return {
        "users": [{"uid": "ivy", "email": "ivy@acme.example", "firstName": "Ivy"}],
        "apps": APPS,
        "profiles": PROFILES,
        "core": {
            "labels": [
                {"id": EXECUTIVES, "name": "Executives", "static": True},
                {"id": ENGINEERING, "name": "Engineering", "static": True},
                {"id": HIGH_RISK, "name": LABEL, "static": True},
            ],
            "devices": devices,
        },
    }


@pytest.fixture
def make_mdm():
    started = []

    def make(**options):
        handle = start_emulator(fleet(**options), product="both")
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture
def mdm(make_mdm):
    return make_mdm()


@pytest.fixture
def core(tenant, mdm):
    """The Core after a first sync, with every device's agent active."""
    integration = add_integration(tenant, mdm, "core", ["Executives", "Engineering"])
    resync(integration)
    activate_all(integration)
    return integration


def activate_all(integration) -> None:
    devices = Device.objects.filter(integration=integration)
    devices.update(state=Device.ACTIVE, agent_kind=Device.AGENT_STANDALONE)


def resync(integration):
    run = sync(integration)
    assert run.status == "done", run.error
    return run


def mdm_device(handle, device: Device):
    return next(d for d in handle.fleet.core.devices if d.uuid == device.mdm_id)


def carry(handle, device: Device, profiles=None, apps=None) -> None:
    """Changes what the device carries in the MDM and makes it check in, so the next sync
    fetches its inventory again."""
    found = mdm_device(handle, device)
    if profiles is not None:
        found.profiles = tuple(profiles)
    if apps is not None:
        found.apps = tuple(apps)
    check_in(handle, device)


def check_in(handle, device: Device) -> None:
    now = int(time.time() * 1000) + next(_ticks)
    response = httpx.post(
        f"{handle.url}/_emulator/fleet/core/devices/{device.mdm_id}",
        json={"lastConnectedAt": now},
        timeout=10,
    )
    response.raise_for_status()


def _counter():
    n = 0
    while True:
        n += 1
        yield n


_ticks = _counter()


def ios_devices(integration) -> list[Device]:
    return list(Device.objects.filter(integration=integration, platform="ios").order_by("pk"))


def respond_with_label(integration, threat_id: str, mitigation: str = "remove") -> None:
    """Every group of the integration answers the threat with the high-risk label."""
    target = ActionTarget.objects.get(integration=integration, name=LABEL)
    for group in integration.groups.all():
        matrix = matrix_for(group)
        set_row(matrix, threat_id, {"mdm_action": target.pk, "mitigation": mitigation})
        deploy(matrix, "alice")


def deliver_all() -> dict:
    return engine.run_due()


def labels_of(handle, device: Device) -> set[str]:
    state = httpx.get(f"{handle.url}/_emulator/state/core/devices/{device.mdm_id}").json()
    return {label["name"] for label in state["labels"]}


def _admin(tenant, username: str, role: str):
    user = User.objects.create_user(username, email=f"{username}@acme.example", password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    _, token = AdminToken.issue(user, tenant)
    user.headers = {"Authorization": f"Bearer {token}"}
    return user


@pytest.fixture
def alice(tenant):
    return _admin(tenant, "alice", Membership.ADMIN)


@pytest.fixture
def rita(tenant):
    return _admin(tenant, "rita", Membership.READ_ONLY)
