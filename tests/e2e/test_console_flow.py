"""An administrator's day in a real browser: add a Core and a Cloud through the wizard,
sync, see the devices, edit and deploy a matrix, watch a threat reported by the agent
simulator and its MDM action arrive in the threat log, then see it mitigated."""

import re

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bastion.api.models import DeviceCredential
from bastion.inventory.models import ConsoleGroup, Device
from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.tasks import sync_integration
from bastion.tenancy.models import Membership
from bastion.tenancy.services import create_administrator
from bastion.threats import engine
from bastion.threats.models import ThreatEvent
from emulators.agent.client import Agent

PASSWORD = "correct horse battery 9"
QUARANTINE = "MTD-Quarantine"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _agents_are_not_throttled(settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 1000
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def sign_in(page, username="alice"):
    page.goto("/sign-in")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")


def add_mdm(page, emulator, provider, username, name, groups, shoot=None):
    page.goto("/mdm/add")
    page.check(f"#provider-{provider}")
    page.click("text=Next")

    page.fill("#id_url", emulator.base_url(provider))
    page.fill("#id_username", username)
    page.fill("#id_password", "secret")
    page.fill("#id_name", name)
    page.check("#id_mask_users")
    page.click("#test-connection")
    expect(page.locator("#connection-report")).to_contain_text("Connection works")
    if shoot:
        shoot(page, "03-add-mdm-setup")
    # The password is not sent back to the browser; the wizard kept it.
    page.click("#next")

    for group in groups:
        page.get_by_role("button", name=f"Select {group}", exact=True).click()
    page.get_by_role("button", name=f"Move {groups[-1]} up").click()
    expect(page.locator("#selected li").first).to_contain_text(groups[-1])
    if shoot:
        shoot(page, "04-add-mdm-groups")
    page.click("#finish")
    expect(page.locator("h1")).to_contain_text(name)
    return Integration.objects.get(name=name)


def run_queued_sync(page, integration):
    # The page polls the run while it is queued; park the browser so the worker's writes
    # and the page's reads do not share the test database connection at the same time.
    page.goto("about:blank")
    run = SyncRun.objects.get(integration=integration, status=SyncRun.QUEUED)
    sync_integration(run.pk)
    page.goto(f"/mdm/{integration.pk}")
    expect(page.locator("#sync-progress")).to_contain_text("Done")
    expect(page.locator("#sync-bar")).to_have_attribute("value", "1")


def test_an_administrators_day(page, live_server, emulator, tenant, shoot):
    create_administrator(tenant, "alice", PASSWORD, Membership.ADMIN)
    sign_in(page)
    shoot(page, "01-dashboard-empty")

    page.goto("/mdm/add")
    shoot(page, "02-add-mdm-provider")
    core = add_mdm(page, emulator, "core", "admin", "Core EU", ["Executives", "Sales"], shoot=shoot)
    assert [g.mdm_group_name for g in core.selected_groups()] == ["Sales", "Executives"]
    run_queued_sync(page, core)
    shoot(page, "05-mdm-core")

    cloud = add_mdm(page, emulator, "cloud", "admin@acme.example", "Cloud US",
                    ["Executives", "Sales Team"])  # fmt: skip
    run_queued_sync(page, cloud)

    page.goto("/mdm")
    expect(page.locator("table")).to_contain_text("Core EU")
    expect(page.locator("table")).to_contain_text("Cloud US")
    shoot(page, "06-mdm-list")

    page.goto("/devices")
    current = Device.objects.filter(tenant=tenant).exclude(state=Device.REMOVED).count()
    assert current > 0
    expect(page.locator("table.devices tbody tr")).to_have_count(min(current, 50))
    expect(page.locator("tr.state-waiting").first).to_be_visible()
    shoot(page, "07-devices")

    # The device that will be attacked: an iPhone placed by the Core in its group.
    device = (
        Device.objects.filter(integration=core, platform="ios")
        .select_related("group")
        .order_by("pk")
        .first()
    )
    group = device.group
    page.goto(f"/devices/{device.pk}")
    expect(page.locator("body")).to_contain_text("highest priority")
    shoot(page, "08-device")

    page.goto(f"/policy?group={group.pk}")
    page.select_option('select[name="arp_mitm:mdm_action"]', label=QUARANTINE)
    page.select_option('select[name="arp_mitm:mitigation"]', "remove")
    page.click("#save-draft")
    expect(page.locator("#draft-notice")).to_contain_text("1")
    expect(page.locator("#row-arp_mitm")).to_have_class(re.compile("diff-changed"))
    shoot(page, "09-policy-draft")
    page.click("#deploy")
    expect(page.locator("#deployed-version")).to_have_text("2")
    expect(page.locator("#draft-notice")).to_contain_text("The draft is the deployed version")

    device.state = Device.ACTIVE
    device.save(update_fields=["state"])
    _, credential = DeviceCredential.issue(device)
    agent = Agent(live_server.url, credential)
    try:
        assert agent.fetch_matrix()["version"] == 2
        page.goto("about:blank")
        answer = agent.report("arp_mitm", details={"ssid": "<b>Free WiFi</b>"})
        engine.run_due()

        page.goto("/threats")
        first = page.locator("table.threats tbody tr").first
        expect(first).to_contain_text("MITM - ARP")
        expect(first).to_contain_text("MDM action done")
        shoot(page, "10-threat-log")
        assert QUARANTINE in core_labels(emulator, device)

        first.locator("a").first.click()
        expect(page.locator("#actions")).to_contain_text(QUARANTINE)
        expect(page.locator("body")).to_contain_text("<b>Free WiFi</b>")
        shoot(page, "11-threat-event")

        page.goto("about:blank")
        agent.mitigate(answer["event_id"])
        engine.run_due()
    finally:
        agent.close()

    event = ThreatEvent.objects.get(agent_event_id=answer["event_id"])
    page.goto(f"/threats/{event.pk}")
    expect(page.locator("#event-state")).to_have_text("Mitigated")
    expect(page.locator("#actions")).to_contain_text("Undo")
    assert QUARANTINE not in core_labels(emulator, device)
    shoot(page, "12-threat-mitigated")

    page.goto("/")
    expect(page.locator("#open-threats")).to_have_text("0")
    expect(page.locator("#active-count")).to_have_text("1")
    shoot(page, "13-dashboard")

    for name, path in [("14-users", "/users"), ("15-apps", "/apps"), ("16-os-risk", "/os-risk"),
                       ("17-profiles", "/profiles"), ("18-audit-log", "/audit"),
                       ("19-settings", "/settings")]:  # fmt: skip
        page.goto(path)
        shoot(page, name)
    assert page.console_errors == []
    assert ConsoleGroup.objects.filter(tenant=tenant, integration=cloud).exists()


def core_labels(emulator, device) -> set[str]:
    state = httpx.get(f"{emulator.url}/_emulator/state/core/devices/{device.mdm_id}").json()
    return {label["name"] for label in state["labels"]}


def test_a_read_only_administrator_sees_no_change_buttons(page, tenant, core_integration):
    create_administrator(tenant, "rob", PASSWORD, Membership.READ_ONLY)
    sign_in(page, "rob")

    page.goto(f"/mdm/{core_integration.pk}")

    expect(page.locator("#sync-now")).to_have_count(0)
    page.goto("/policy")
    expect(page.locator("#save-draft")).to_have_count(0)
    expect(page.locator("table.matrix fieldset, fieldset[disabled]")).to_have_count(1)


def test_the_progress_bar_follows_a_running_sync_live(page, tenant, core_integration):
    create_administrator(tenant, "alice", PASSWORD, Membership.ADMIN)
    run = SyncRun.objects.create(integration=core_integration, trigger=SyncRun.MANUAL)
    sign_in(page)
    page.goto(f"/mdm/{core_integration.pk}")
    expect(page.locator("#sync-progress")).to_contain_text("Queued")

    # A worker's heartbeat, as the sync engine writes it.
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.RUNNING, progress_done=10, progress_total=40
    )
    expect(page.locator("#sync-bar")).to_have_attribute("value", "10")
    expect(page.locator("#sync-progress")).to_contain_text("10 of 40 devices")
    shoot_progress = page.locator("#sync-progress").inner_text()

    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.DONE, progress_done=40, seen=40, finished_at=timezone.now()
    )
    expect(page.locator("#sync-progress")).to_contain_text("40 seen")
    expect(page.locator("#sync-progress")).not_to_have_attribute("hx-trigger", re.compile("."))
    assert "Running" in shoot_progress
    assert page.console_errors == []
