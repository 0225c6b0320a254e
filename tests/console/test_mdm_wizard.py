"""Add MDM in three steps against the emulator, with the connection test's verdicts."""

import pytest
from django.urls import reverse

from bastion.mdm.models import Integration, SyncRun
from bastion.tenancy.models import AuditEntry


def setup_values(emulator, **overrides):
    values = {
        "url": emulator.base_url("core"),
        "username": "admin",
        "password": "secret",
        "name": "Core EU",
        "sync_users": "on",
        "sync_interval_minutes": "240",
        "op": "next",
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def choose(client, provider="core"):
    return client.post(reverse("console:mdm_add"), {"provider": provider})


def test_providers_without_a_connector_are_shown_but_not_choosable(admin_client):
    page = admin_client.get(reverse("console:mdm_add")).content.decode()
    assert "Microsoft Intune" in page
    assert "not yet available" in page

    response = choose(admin_client, "intune")

    assert response.status_code == 200
    assert "not available yet" in response.content.decode()
    assert "mdm_wizard" not in admin_client.session


def test_setup_refuses_a_url_that_is_not_one_and_keeps_what_was_typed(admin_client, emulator):
    choose(admin_client)

    response = admin_client.post(
        reverse("console:mdm_setup"), setup_values(emulator, url="ftp://nowhere", name="Kept")
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "This URL can&#x27;t be used" in page
    assert 'value="Kept"' in page
    assert Integration.objects.count() == 0


def test_setup_tells_nothing_answered(admin_client, emulator):
    choose(admin_client)

    response = admin_client.post(
        reverse("console:mdm_setup"), setup_values(emulator, url="http://127.0.0.1:9")
    )

    assert response.status_code == 400
    assert "Nothing answered at this URL" in response.content.decode()


def test_setup_tells_bad_credentials(admin_client, emulator):
    choose(admin_client)

    response = admin_client.post(
        reverse("console:mdm_setup"), setup_values(emulator, password="wrong")
    )

    assert response.status_code == 400
    assert "rejected this username or password" in response.content.decode()


def test_setup_tells_a_missing_api_permission(admin_client, emulator):
    choose(admin_client)

    response = admin_client.post(
        reverse("console:mdm_setup"), setup_values(emulator, username="norole")
    )

    assert response.status_code == 400
    assert "lacks an API permission" in response.content.decode()


def test_setup_names_the_missing_fields(admin_client, emulator):
    choose(admin_client)

    response = admin_client.post(
        reverse("console:mdm_setup"), setup_values(emulator, username="", name="", password="")
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_username-error"' in page
    assert 'id="id_name-error"' in page
    assert 'id="id_password-error"' in page


def test_a_working_connection_is_reported_before_going_on(admin_client, emulator):
    choose(admin_client)

    response = admin_client.post(reverse("console:mdm_setup"), setup_values(emulator, op="test"))

    assert response.status_code == 200
    assert "Connection works" in response.content.decode()


def test_three_steps_create_the_integration_with_the_chosen_order(admin_client, emulator):
    choose(admin_client)
    response = admin_client.post(reverse("console:mdm_setup"), setup_values(emulator))
    assert response.status_code == 302
    labels = {label.name: str(label.id) for label in emulator.fleet.core.labels}

    page = admin_client.get(reverse("console:mdm_groups")).content.decode()
    assert "Sales" in page and "Executives" in page
    for name in ("Sales", "Executives"):
        admin_client.post(reverse("console:mdm_groups"), {"op": f"add:{labels[name]}"})
    admin_client.post(reverse("console:mdm_groups"), {"op": f"up:{labels['Executives']}"})
    response = admin_client.post(reverse("console:mdm_groups"), {"op": "finish"})

    integration = Integration.objects.get()
    assert response.status_code == 302
    assert integration.name == "Core EU"
    assert integration.password == "secret"
    assert [g.mdm_group_name for g in integration.selected_groups()] == ["Executives", "Sales"]
    assert SyncRun.objects.filter(integration=integration, status=SyncRun.QUEUED).count() == 1
    entry = AuditEntry.objects.get(action="mdm_added")
    assert (entry.actor, entry.object_id) == ("alice", str(integration.pk))
    assert "secret" not in str(entry.detail)


def test_finish_without_a_group_says_so_and_stores_nothing(admin_client, emulator):
    choose(admin_client)
    admin_client.post(reverse("console:mdm_setup"), setup_values(emulator))

    response = admin_client.post(reverse("console:mdm_groups"), {"op": "finish"})

    assert response.status_code == 400
    assert "select at least one group" in response.content.decode()
    assert Integration.objects.count() == 0


def test_a_group_the_mdm_does_not_list_is_refused(admin_client, emulator):
    choose(admin_client)
    admin_client.post(reverse("console:mdm_setup"), setup_values(emulator))

    response = admin_client.post(reverse("console:mdm_groups"), {"op": "add:999999"})

    assert response.status_code == 400
    assert "no such group" in response.content.decode()


def test_cloud_groups_say_why_they_cannot_be_action_targets(admin_client, emulator):
    choose(admin_client, "cloud")
    admin_client.post(
        reverse("console:mdm_setup"),
        setup_values(emulator, url=emulator.base_url("cloud"), username="admin@acme.example"),
    )

    page = admin_client.get(reverse("console:mdm_groups")).content.decode()

    assert "Not an MDM action target" in page
    assert "Can be an MDM action target" in page


@pytest.mark.parametrize("step", ["console:mdm_setup", "console:mdm_groups"])
def test_later_steps_without_the_first_send_back_to_it(admin_client, step):
    response = admin_client.get(reverse(step))

    assert response.status_code == 302
    assert response["Location"] == reverse("console:mdm_add")
