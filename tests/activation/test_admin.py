"""Activation through the admin API and the command line."""

import json

from click.testing import CliRunner

from bastion.activation import files
from bastion.activation.models import ActivationToken
from bastion.cli import main
from tests.activation.conftest import code_of, core_device_in, link_token


def test_alice_sees_the_code_in_full_and_the_view_is_audited(core_integration, alice):
    response = alice.get(f"/api/admin/v1/integrations/{core_integration.pk}/activation/code")

    assert response.status_code == 200
    assert response.json()["code"] == code_of(core_integration)
    entry = core_integration.tenant.audit_entries.get(action="activation.code_viewed")
    assert entry.actor == "alice"
    assert entry.object_id == str(core_integration.pk)


def test_a_code_made_before_the_public_url_changed_says_so_until_rotated(
    core_integration, alice, settings
):
    url = f"/api/admin/v1/integrations/{core_integration.pk}/activation/code"
    first = alice.get(url).json()
    settings.BASTION_PUBLIC_URL = "https://mtd.example.com"
    moved = alice.get(url).json()
    shown = CliRunner().invoke(main, ["activation", "code", core_integration.name])
    alice.post(f"{url}/rotate")
    rotated = alice.get(url).json()

    assert first["stale"] is False
    assert moved["code"] == first["code"] and moved["stale"] is True
    assert moved["address"] == first["address"] != "https://mtd.example.com"
    assert "now https://mtd.example.com: replace it with" in shown.output
    assert rotated["stale"] is False and rotated["address"] == "https://mtd.example.com"


def test_a_read_only_administrator_cannot_see_or_rotate_the_code(core_integration, bob):
    base = f"/api/admin/v1/integrations/{core_integration.pk}/activation"

    shown = bob.get(f"{base}/code")
    rotated = bob.post(f"{base}/code/rotate")
    xml = bob.get(f"{base}/files/android-xml")
    overview = bob.get(base)

    assert (shown.status_code, rotated.status_code, xml.status_code) == (403, 403, 403)
    assert overview.status_code == 200
    assert code_of(core_integration) not in overview.content.decode()
    assert not core_integration.tenant.audit_entries.exists()


def test_another_tenants_administrator_finds_nothing(core_integration, mallory):
    response = mallory.get(f"/api/admin/v1/integrations/{core_integration.pk}/activation/code")

    assert response.status_code == 404


def test_files_download_byte_for_byte(cloud_integration, alice):
    base = f"/api/admin/v1/integrations/{cloud_integration.pk}/activation/files"

    plist = alice.get(f"{base}/plist-current")
    xml = alice.get(f"{base}/android-xml")
    unknown = alice.get(f"{base}/nonsense")

    assert plist.content == files.render(cloud_integration, "plist-current").content
    assert plist["Content-Disposition"] == 'attachment; filename="cloud-eu-current.plist"'
    assert xml.content == files.render(cloud_integration, "android-xml").content
    assert unknown.status_code == 404
    assert (
        cloud_integration.tenant.audit_entries.filter(action="activation.file_downloaded").count()
        == 1
    )


def test_regenerating_with_a_bad_expiry_names_the_field_and_keeps_the_link(core_integration, alice):
    before = link_token(core_integration)
    url = f"/api/admin/v1/integrations/{core_integration.pk}/activation/link/regenerate"

    response = alice.post(url, {"expires_at": "soon"}, content_type="application/json")

    assert response.status_code == 400
    assert "expires_at" in response.json()["detail"]
    assert link_token(core_integration) == before


def test_regenerating_shows_the_expiry_with_its_zone(core_integration, alice, settings):
    url = f"/api/admin/v1/integrations/{core_integration.pk}/activation/link/regenerate"

    response = alice.post(
        url,
        {"expires_at": "2030-06-01T12:00:00", "time_zone": "America/New_York"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["expires_at"].startswith("2030-06-01T16:00:00")
    assert body["expires_shown"] == "2030-06-01T16:00:00+00:00 (UTC)"
    assert body["link"].endswith("&MDM_ID=$DEVICE_UUID$")


def test_pending_reactivations_are_listed_for_the_tenant_only(
    synced_core, emulator, device_client, alice, mallory
):
    uuid = core_device_in(emulator, "Sales")
    device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid})
    held = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()

    ours = alice.get("/api/admin/v1/activation/requests").json()
    theirs = mallory.get("/api/admin/v1/activation/requests").json()
    stolen = mallory.post(f"/api/admin/v1/activation/requests/{held['request_id']}/approve")

    assert [row["id"] for row in ours] == [held["request_id"]]
    assert theirs == []
    assert stolen.status_code == 404


def test_settings_refuse_a_template_without_the_link(tenant, alice):
    response = alice.put(
        "/api/admin/v1/activation/settings",
        {"email_html": "<p>hi</p>"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "email_html" in response.json()["detail"]


def test_the_command_line_shows_rotates_and_approves(synced_core, emulator, device_client):
    runner = CliRunner()
    tenant = synced_core.tenant.name
    uuid = core_device_in(emulator, "Sales")
    device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid})
    held = device_client("/activate", {"token": link_token(synced_core), "mdm_id": uuid}).json()

    shown = runner.invoke(main, ["activation", "code", "Core EU", "--tenant", tenant, "--json"])
    old = json.loads(shown.output)["code"]
    rotated = runner.invoke(main, ["activation", "rotate-code", "Core EU", "--tenant", tenant])
    pending = runner.invoke(main, ["activation", "pending", "--tenant", tenant, "--json"])
    approved = runner.invoke(
        main, ["activation", "approve", str(held["request_id"]), "--tenant", tenant, "--json"]
    )
    plist = runner.invoke(
        main, ["activation", "files", "Core EU", "--tenant", tenant, "--file", "plist-current"]
    )
    link = runner.invoke(main, ["activation", "link", "Core EU", "--tenant", tenant, "--json"])

    assert shown.exit_code == 0, shown.output
    assert rotated.exit_code == 0
    assert rotated.output.strip() == code_of(synced_core) != old
    assert [row["id"] for row in json.loads(pending.output)] == [held["request_id"]]
    assert json.loads(approved.output)["status"] == "approved"
    assert plist.output.encode() == files.render(synced_core, "plist-current").content
    assert json.loads(link.output)["token"] == link_token(synced_core)
    assert ActivationToken.objects.filter(integration=synced_core, kind="code").count() == 2
