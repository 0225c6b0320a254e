"""The Profiles, Apps and Activation pages in a browser: decisions by button, markup from
the MDM shown as text, and a screenshot of each page."""

from playwright.sync_api import expect

from bastion.activation.models import ActivationEmail, ReactivationRequest
from bastion.inventory.models import App, Device, DeviceApp, DeviceProfile, Profile
from bastion.tenancy.models import Membership
from bastion.tenancy.services import create_administrator
from tests.console.conftest import make_devices
from tests.e2e.test_console_flow import PASSWORD, sign_in

XSS_NAME = "<img src=x onerror=alert(1)> Proxy CA"


def test_profiles_apps_and_activation_pages(page, tenant, shoot):
    create_administrator(tenant, "alice", PASSWORD, Membership.ADMIN)
    devices = make_devices(tenant, 4)
    proxy = Profile.objects.create(tenant=tenant, identifier="com.proxy.ca", name=XSS_NAME)
    Profile.objects.create(
        tenant=tenant, identifier="mi.mdm", name="Acme MDM", managed=True, status="trusted"
    )
    DeviceProfile.objects.bulk_create([DeviceProfile(device=d, profile=proxy) for d in devices])
    spyware = App.objects.create(
        tenant=tenant, platform="ios", identifier="com.spy.agent", name="Flashlight"
    )
    App.objects.create(tenant=tenant, platform="ios", identifier="com.office", name="Office")
    DeviceApp.objects.create(device=devices[0], app=spyware)
    ActivationEmail.objects.create(
        tenant=tenant, device=devices[1], recipient="ivy@acme.example", status="failed",
        attempts=5, last_error="550 mailbox unavailable",
    )  # fmt: skip
    ReactivationRequest.objects.create(
        tenant=tenant, device=devices[2], method="link", agent_kind=Device.AGENT_STANDALONE,
        pickup_hash="0" * 64,
    )  # fmt: skip
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page)

    page.goto("/profiles")
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    shoot(page, "profiles")
    page.get_by_role("button", name=f"Distrust {XSS_NAME}").click()
    expect(page.locator(".messages")).to_contain_text("is now untrusted")
    expect(page.locator("tbody tr").first).to_contain_text("Untrusted")
    page.get_by_role("link", name=XSS_NAME).click()
    expect(page.locator("tbody tr")).to_have_count(4)
    shoot(page, "profile")

    page.goto("/apps")
    page.locator("tr", has_text="com.spy.agent").get_by_role("button").click()
    expect(page.locator(".messages")).to_contain_text("Marked malicious")
    page.check("input[name=malicious]")
    page.click("form.filters button")
    expect(page.locator("tbody tr")).to_have_count(1)
    shoot(page, "apps")

    page.goto("/settings/activation")
    expect(page.locator("#requests + table tbody tr")).to_have_count(1)
    expect(page.get_by_text("550 mailbox unavailable")).to_be_visible()
    shoot(page, "activation_settings")

    assert dialogs == []
    assert page.console_errors == []
    assert Profile.objects.get(pk=proxy.pk).status == Profile.UNTRUSTED
