"""An integration's page: Sync now with its progress, history, edit, remove, activation."""

from django.urls import reverse

from bastion.inventory.models import Device
from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.tasks import sync_integration
from bastion.tenancy.models import AuditEntry


def test_sync_now_stores_a_queued_run_and_the_page_polls_it(admin_client, core_integration):
    response = admin_client.post(reverse("console:sync_now", args=[core_integration.pk]))

    run = SyncRun.objects.get(integration=core_integration)
    assert response.status_code == 302
    assert run.status == SyncRun.QUEUED
    entry = AuditEntry.objects.get(action="sync_requested")
    assert entry.object_id == str(core_integration.pk)
    fragment = admin_client.get(reverse("console:sync_progress", args=[core_integration.pk]))
    assert 'hx-trigger="every 1s"' in fragment.content.decode()


def test_a_second_sync_now_while_one_is_queued_adds_no_run(admin_client, core_integration):
    admin_client.post(reverse("console:sync_now", args=[core_integration.pk]))

    admin_client.post(reverse("console:sync_now", args=[core_integration.pk]))

    assert SyncRun.objects.filter(integration=core_integration).count() == 1


def test_progress_stops_polling_once_the_run_is_done(admin_client, core_integration):
    admin_client.post(reverse("console:sync_now", args=[core_integration.pk]))
    run = SyncRun.objects.get(integration=core_integration)

    sync_integration(run.pk)

    fragment = admin_client.get(reverse("console:sync_progress", args=[core_integration.pk]))
    page = fragment.content.decode()
    assert "hx-trigger" not in page
    assert "Done" in page
    run.refresh_from_db()
    assert f"{run.seen} seen" in page and run.seen > 0


def test_history_lists_runs(admin_client, synced_core):
    page = admin_client.get(reverse("console:sync_history", args=[synced_core.pk])).content.decode()

    assert "Done" in page
    assert "Sync now" in page or "Manual" in page or "Scheduled" in page


def test_detail_shows_learnt_targets_with_why_not(admin_client, synced_core):
    page = admin_client.get(reverse("console:mdm_detail", args=[synced_core.pk])).content.decode()

    assert "selected for sync" in page
    assert synced_core.action_targets.filter(blocker="").exists()


def test_edit_keeps_the_password_when_left_empty(admin_client, core_integration):
    url = reverse("console:mdm_edit", args=[core_integration.pk])

    response = admin_client.post(
        url,
        {
            "url": core_integration.url,
            "username": "admin",
            "password": "",
            "name": "Core Renamed",
            "sync_interval_minutes": "60",
        },
    )

    core_integration.refresh_from_db()
    assert response.status_code == 302
    assert core_integration.name == "Core Renamed"
    assert core_integration.sync_interval_minutes == 60
    assert core_integration.password == "secret"
    assert core_integration.sync_users is False


def test_edit_tests_new_credentials_and_saves_nothing_when_rejected(admin_client, core_integration):
    url = reverse("console:mdm_edit", args=[core_integration.pk])

    response = admin_client.post(
        url,
        {
            "url": core_integration.url,
            "username": "admin",
            "password": "wrong",
            "name": "Core Renamed",
            "sync_interval_minutes": "60",
        },
    )

    core_integration.refresh_from_db()
    assert response.status_code == 400
    assert "rejected this username or password" in response.content.decode()
    assert core_integration.name == "Core EU"
    assert core_integration.password == "secret"


def test_edit_refuses_an_interval_out_of_range(admin_client, core_integration):
    response = admin_client.post(
        reverse("console:mdm_edit", args=[core_integration.pk]),
        {"url": core_integration.url, "username": "admin", "name": "Core EU",
         "sync_interval_minutes": "1"},
    )  # fmt: skip

    assert response.status_code == 400
    assert 'id="id_sync_interval_minutes-error"' in response.content.decode()


def test_remove_says_what_goes_and_asks_about_mdm_actions(admin_client, synced_core):
    devices = Device.objects.filter(integration=synced_core).exclude(state=Device.REMOVED).count()

    page = admin_client.get(reverse("console:mdm_remove", args=[synced_core.pk])).content.decode()

    assert f"<strong>{devices}</strong> devices" in page
    assert "Undo them" in page


def test_remove_needs_the_name_typed(admin_client, synced_core):
    response = admin_client.post(
        reverse("console:mdm_remove", args=[synced_core.pk]),
        {"undo_actions": "keep", "confirm_name": "something else"},
    )

    assert response.status_code == 400
    assert Integration.objects.filter(pk=synced_core.pk).exists()


def test_remove_tombstones_devices_and_records_the_choice(admin_client, synced_core):
    response = admin_client.post(
        reverse("console:mdm_remove", args=[synced_core.pk]),
        {"undo_actions": "undo", "confirm_name": synced_core.name},
    )

    assert response.status_code == 302
    assert not Integration.objects.filter(pk=synced_core.pk).exists()
    left = Device.objects.filter(tenant=synced_core.tenant).exclude(state=Device.REMOVED)
    assert not left.exists()
    entry = AuditEntry.objects.get(action="mdm_removed")
    assert entry.detail["undo_actions"] is True


def test_activation_section_shows_previews_and_reveal_is_audited(admin_client, core_integration):
    page = admin_client.get(reverse("console:mdm_detail", args=[core_integration.pk]))
    assert "Activation link" in page.content.decode()

    revealed = admin_client.post(reverse("console:activation_reveal", args=[core_integration.pk]))

    assert revealed.status_code == 200
    assert 'id="activation-code"' in revealed.content.decode()
    assert AuditEntry.objects.filter(action="activation.code_viewed").exists()


def test_regenerate_link_refuses_a_bad_validity(admin_client, core_integration):
    response = admin_client.post(
        reverse("console:activation_regenerate", args=[core_integration.pk]), {"days": "0"}
    )

    assert response.status_code == 400
    assert 'id="id_days-error"' in response.content.decode()


def test_regenerate_link_replaces_it(admin_client, core_integration):
    before = admin_client.post(reverse("console:activation_reveal", args=[core_integration.pk]))

    admin_client.post(
        reverse("console:activation_regenerate", args=[core_integration.pk]), {"days": "30"}
    )

    after = admin_client.post(reverse("console:activation_reveal", args=[core_integration.pk]))
    assert before.context["link"]["link"] != after.context["link"]["link"]


def test_files_download(admin_client, core_integration):
    response = admin_client.get(
        reverse("console:activation_file", args=[core_integration.pk, "plist-current"])
    )

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert core_integration.tenant.tenant_id.encode() in response.content


def held_request(tenant):
    from bastion.activation.models import ReactivationRequest
    from tests.console.conftest import make_devices

    device = make_devices(tenant, 1, prefix="held")[0]
    return ReactivationRequest.objects.create(
        tenant=tenant, device=device, method="code", agent_kind="standalone", pickup_hash="x"
    )


def test_a_held_reactivation_is_listed_and_approved(admin_client, tenant):
    held = held_request(tenant)

    page = admin_client.get(reverse("console:mdm_list")).content.decode()
    response = admin_client.post(
        reverse("console:activation_decide", args=[held.pk]), {"decision": "approve"}
    )

    held.refresh_from_db()
    assert "held-0" in page
    assert response.status_code == 302
    assert (held.status, held.decided_by) == ("approved", "alice")


def test_a_reactivation_decision_must_be_approve_or_reject(admin_client, tenant):
    held = held_request(tenant)

    admin_client.post(reverse("console:activation_decide", args=[held.pk]), {"decision": "maybe"})

    held.refresh_from_db()
    assert held.status == "pending"


def test_another_tenants_reactivation_cannot_be_decided(admin_client, other_tenant):
    held = held_request(other_tenant)

    response = admin_client.post(
        reverse("console:activation_decide", args=[held.pk]), {"decision": "approve"}
    )

    held.refresh_from_db()
    assert response.status_code == 404
    assert held.status == "pending"
