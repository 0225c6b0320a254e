"""The threat log, an event's page with retry, and the Policy page."""

from datetime import timedelta

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from bastion.api.models import DeviceCredential
from bastion.inventory.models import ConsoleGroup, Device
from bastion.mdm.models import ActionTarget
from bastion.tenancy.models import AuditEntry
from bastion.threats import engine
from bastion.threats.matrix import deploy, draft_rows, matrix_for, set_row
from bastion.threats.models import ResponseAction, ThreatEvent

QUARANTINE = "MTD-Quarantine"


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.BASTION_DEVICE_RATE_LIMIT = 1000
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def iris(synced_core):
    device = Device.objects.filter(integration=synced_core, platform="ios").order_by("pk").first()
    device.state = Device.ACTIVE
    device.save(update_fields=["state"])
    _, device.token = DeviceCredential.issue(device)
    return device


def report(client, device, threat_id, event_id, detected_at="2026-01-05T10:00:00Z"):
    return client.post(
        "/api/device/v1/threats",
        {"event_id": event_id, "threat_id": threat_id, "detected_at": detected_at},
        content_type="application/json",
        headers={"Authorization": f"Bearer {device.token}"},
    )


def quarantine_on(group, integration, threat_id="arp_mitm"):
    target = ActionTarget.objects.get(integration=integration, name=QUARANTINE)
    matrix = matrix_for(group)
    set_row(matrix, threat_id, {"mdm_action": target.pk, "mitigation": "remove"})
    deploy(matrix, "alice")
    return target


def test_threat_log_shows_each_event_with_its_mdm_outcome(admin_client, client, iris, synced_core):
    quarantine_on(iris.group, synced_core)
    report(client, iris, "arp_mitm", "ev-1")
    report(client, iris, "ssl_strip", "ev-2")
    engine.run_due()

    response = admin_client.get(reverse("console:threats"))

    outcomes = {event.threat_id: event.outcome for event in response.context["page"]}
    assert outcomes == {"arp_mitm": "done", "ssl_strip": "none"}


def test_threat_log_filters(admin_client, client, iris, synced_core):
    quarantine_on(iris.group, synced_core)
    report(client, iris, "arp_mitm", "ev-1", detected_at="2026-01-05T10:00:00Z")
    report(client, iris, "ssl_strip", "ev-2", detected_at="2026-01-07T10:00:00Z")
    url = reverse("console:threats")

    def threats(query):
        return [event.threat_id for event in admin_client.get(url + query).context["page"]]

    assert threats("?threat=ssl_strip") == ["ssl_strip"]
    assert threats("?outcome=pending") == ["arp_mitm"]
    assert threats("?since=2026-01-06") == ["ssl_strip"]
    assert threats(f"?device={iris.pk}&sort=time") == ["arp_mitm", "ssl_strip"]
    assert threats("?state=mitigated") == []


@pytest.mark.parametrize(
    "query, field",
    [("?severity=apocalyptic", "severity"), ("?since=yesterday", "since"),
     ("?outcome=maybe", "outcome"), ("?device=abc", "device"), ("?threat=nope", "threat")],
)  # fmt: skip
def test_threat_log_names_a_bad_filter(admin_client, tenant, query, field):
    response = admin_client.get(reverse("console:threats") + query)

    assert response.status_code == 400
    assert f"{field}:" in response.content.decode()


def test_event_page_shows_tries_errors_and_retry_redelivers(
    admin_client, client, emulator, iris, synced_core
):
    quarantine_on(iris.group, synced_core)
    emulator.set_faults([{"kind": "error", "status": 500, "path": "/labels/"}])
    report(client, iris, "arp_mitm", "ev-1")
    later = timezone.now()
    for _ in range(engine.MAX_ATTEMPTS):
        later += timedelta(hours=2)
        engine.run_due(now=later)
    event = ThreatEvent.objects.get()
    action = ResponseAction.objects.get()
    assert action.state == ResponseAction.FAILED

    page = admin_client.get(reverse("console:threat", args=[event.pk])).content.decode()
    assert "Retry" in page
    assert f"<td>{engine.MAX_ATTEMPTS}</td>" in page
    assert "version 2" in page

    emulator.clear_faults()
    response = admin_client.post(reverse("console:threat_retry", args=[event.pk, action.pk]))
    engine.run_due()

    state = httpx.get(f"{emulator.url}/_emulator/state/core/devices/{iris.mdm_id}").json()
    assert response.status_code == 302
    assert QUARANTINE in {label["name"] for label in state["labels"]}
    assert AuditEntry.objects.filter(action="mdm_action_retried").exists()


def test_retry_of_an_action_that_did_not_fail_changes_nothing(
    admin_client, client, iris, synced_core
):
    quarantine_on(iris.group, synced_core)
    report(client, iris, "arp_mitm", "ev-1")
    engine.run_due()
    action = ResponseAction.objects.get()

    admin_client.post(reverse("console:threat_retry", args=[action.event_id, action.pk]))

    action.refresh_from_db()
    assert action.state == ResponseAction.DONE
    assert not AuditEntry.objects.filter(action="mdm_action_retried").exists()


def post_matrix(client, group, changes: dict, op="save"):
    """The whole table as the page sends it, with `changes` (threat_id -> row) applied."""
    data = {"group": group.pk, "op": op}
    for threat_id, row in draft_rows(matrix_for(group)).items():
        row = {**row, **changes.get(threat_id, {})}
        for name in ("enabled", "alert_user", "notify_admin"):
            if row[name]:
                data[f"{threat_id}:{name}"] = "on"
        data[f"{threat_id}:severity"] = row["severity"]
        data[f"{threat_id}:device_action"] = row["device_action"]
        data[f"{threat_id}:mitigation"] = row["mitigation"]
        data[f"{threat_id}:mdm_action"] = "" if row["mdm_action"] is None else row["mdm_action"]
    return client.post(reverse("console:policy"), data)


def test_policy_saves_a_draft_shows_the_difference_then_deploys(admin_client, synced_core):
    group = synced_core.selected_groups().first()
    target = ActionTarget.objects.get(integration=synced_core, name=QUARANTINE)

    response = post_matrix(
        admin_client, group, {"arp_mitm": {"mdm_action": target.pk, "severity": "low"}}
    )

    assert response.status_code == 302
    page = admin_client.get(reverse("console:policy") + f"?group={group.pk}")
    assert page.context["differences"] == 1
    assert 'id="row-arp_mitm" class="diff-changed"' in page.content.decode()
    assert matrix_for(group).current.rows["arp_mitm"]["mdm_action"] is None

    admin_client.post(reverse("console:policy"), {"group": group.pk, "op": "deploy"})

    deployed = matrix_for(group).current
    assert deployed.rows["arp_mitm"]["mdm_action"] == target.pk
    assert deployed.rows["arp_mitm"]["severity"] == "low"
    assert deployed.deployed_by == "alice"
    assert AuditEntry.objects.filter(action="matrix_deployed").exists()


def test_policy_refuses_a_bad_row_and_keeps_the_stored_draft(admin_client, synced_core):
    group = synced_core.selected_groups().first()
    target = ActionTarget.objects.get(integration=synced_core, name=QUARANTINE)

    response = post_matrix(
        admin_client,
        group,
        {
            "arp_mitm": {"mdm_action": target.pk},
            "ssl_strip": {"mitigation": "remove"},  # nothing to undo: no MDM action
        },
    )

    assert response.status_code == 400
    assert "remove needs an MDM action" in response.content.decode()
    assert not matrix_for(group).draft


def test_handled_on_the_device_is_offered_only_for_core_groups(
    admin_client, synced_core, synced_cloud
):
    core_group = synced_core.selected_groups().first()
    cloud_group = synced_cloud.selected_groups().first()

    core_page = admin_client.get(reverse("console:policy") + f"?group={core_group.pk}")
    cloud_page = admin_client.get(reverse("console:policy") + f"?group={cloud_group.pk}")

    assert "Handled on the device" in core_page.content.decode()
    assert "Handled on the device" not in cloud_page.content.decode()
    response = post_matrix(admin_client, cloud_group, {"arp_mitm": {"mdm_action": "on_device"}})
    assert response.status_code == 400
    assert "only for MobileIron Core" in response.content.decode()


def test_device_page_says_which_group_and_matrix_apply_and_why(admin_client, iris):
    page = admin_client.get(reverse("console:device", args=[iris.pk])).content.decode()

    assert "highest priority" in page
    assert f"position {iris.group.priority + 1}" in page
    assert "version 1" in page


def test_dashboard_counts_open_threats_and_failed_actions(admin_client, client, iris, synced_core):
    quarantine_on(iris.group, synced_core)
    report(client, iris, "arp_mitm", "ev-1", detected_at=timezone.now().isoformat())
    ResponseAction.objects.update(state=ResponseAction.FAILED)

    response = admin_client.get(reverse("console:dashboard"))

    assert response.context["open_threats"] == 1
    assert response.context["failed_actions"] == 1
    assert response.context["threat_chart"]["segments"]
    assert ConsoleGroup.objects.filter(tenant=iris.tenant).exists()
