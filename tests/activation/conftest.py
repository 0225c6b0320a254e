"""Activation fixtures: a real SMTP server, API clients, and emulator devices by situation.

Personas: alice administers "Acme Mobile"; bob only reads it; mallory administers
"Globex", another tenant.
"""

import socket
import threading

import httpx
import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.test import Client

from bastion.activation import engine
from bastion.api.models import AdminToken
from bastion.tenancy.models import Membership
from bastion.tenancy.services import create_tenant


class _Inbox:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        with self.lock:
            self.messages.append(
                {"to": list(envelope.rcpt_tos), "data": envelope.content.decode("utf-8")}
            )
        return "250 OK"


def _free_port() -> int:
    # aiosmtpd checks its server by connecting to the port it was given, so 0 won't do.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback; Django's SMTP backend points at it."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()


@pytest.fixture
def device_client():
    client = Client()

    def post(path: str, body: dict, credential: str | None = None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {credential}"} if credential else {}
        return client.post(
            f"/api/device/v1{path}", body, content_type="application/json", **headers
        )

    return post


def _admin_client(user, tenant):
    _, token = AdminToken.issue(user, tenant)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.user = user
    return client


@pytest.fixture
def alice(tenant):
    user = get_user_model().objects.create_user("alice")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.ADMIN)
    return _admin_client(user, tenant)


@pytest.fixture
def bob(tenant):
    user = get_user_model().objects.create_user("bob")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.READ_ONLY)
    return _admin_client(user, tenant)


@pytest.fixture
def globex(db):
    return create_tenant("Globex")


@pytest.fixture
def mallory(globex):
    user = get_user_model().objects.create_user("mallory")
    Membership.objects.create(user=user, tenant=globex, role=Membership.ADMIN)
    return _admin_client(user, globex)


def control(handle, path: str) -> dict:
    response = httpx.get(f"{handle.url}/_emulator{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def core_label_id(handle, name: str) -> int:
    return next(label.id for label in handle.fleet.core.labels if label.name == name)


def cloud_group_id(handle, name: str) -> int:
    return next(
        group.id
        for group in handle.fleet.cloud.groups
        if group.name == name and group.space == 100001
    )


def core_device_in(handle, label: str, platform: str | None = None) -> str:
    """The uuid of an active Core device in `label`."""
    for uuid in control(handle, f"/state/core/labels/{core_label_id(handle, label)}")["uuids"]:
        state = control(handle, f"/state/core/devices/{uuid}")
        if state["status"] == "ACTIVE" and (platform is None or state["platform"] == platform):
            return uuid
    raise AssertionError(f"no active device in label {label}")


def core_device_outside(handle, labels: list[str]) -> str:
    """The uuid of an active Core device in none of `labels`."""
    for device in handle.fleet.core.devices:
        state = control(handle, f"/state/core/devices/{device.uuid}")
        names = {label["name"] for label in state["labels"]}
        if state["status"] == "ACTIVE" and not names & set(labels):
            return device.uuid
    raise AssertionError("every active device is in a selected label")


def cloud_device_in(handle, group: str, platform: str | None = None) -> dict:
    for device_id in control(handle, f"/state/cloud/groups/{cloud_group_id(handle, group)}")[
        "members"
    ]:
        state = control(handle, f"/state/cloud/devices/{device_id}")
        if state["registrationState"] != "ACTIVE":
            continue
        if platform is None or state["platformType"] == platform:
            return state
    raise AssertionError(f"no active device in group {group}")


def requests_to(handle, product: str, fragment: str) -> list[dict]:
    entries = control(handle, f"/requests?product={product}")["entries"]
    return [entry for entry in entries if fragment in entry["path"]]


def link_token(integration) -> str:
    from bastion.activation import tokens
    from bastion.activation.models import ActivationToken

    return tokens.current(integration, ActivationToken.LINK).token


def code_of(integration) -> str:
    from bastion.activation import tokens
    from bastion.activation.models import ActivationToken

    return tokens.current(integration, ActivationToken.CODE).token


def activate_with_link(integration, mdm_id: str) -> engine.Result:
    return engine.activate(
        engine.Request(method=engine.LINK, token=link_token(integration), mdm_id=mdm_id)
    )
