"""Matrices: defaults from the catalog, drafts, numbered versions, what a row may say."""

import pytest

from bastion.inventory.models import ConsoleGroup
from bastion.mdm.services import InvalidInput
from bastion.threats.catalog import catalog
from bastion.threats.matrix import current_rows, deploy, draft_rows, matrix_for, set_row
from bastion.threats.models import MatrixVersion, ThreatEvent
from tests.threats.conftest import report, target


def test_the_catalog_has_what_the_mdm_local_action_screen_counts():
    threats = catalog().threats.values()
    counts = {c: sum(t.category == c for t in threats) for c in ("network", "device", "malware")}

    assert counts == {"network": 16, "device": 28, "malware": 4}
    assert {"suspicious_profile", "untrusted_profile", "malicious_app"} <= catalog().threats.keys()
    assert not catalog().get("system_tampering").mitigable


def test_a_new_group_starts_from_the_tenants_default_matrix(synced_core):
    default = matrix_for(ConsoleGroup.default_for(synced_core.tenant))
    set_row(default, "arp_mitm", {"severity": "low", "notify_admin": True})
    deploy(default, "alice")
    group = synced_core.groups.exclude(matrix__isnull=False).first()

    rows = current_rows(matrix_for(group))

    assert rows["arp_mitm"]["severity"] == "low" and rows["arp_mitm"]["notify_admin"]


def test_edits_stay_in_the_draft_until_deploy(client, synced_core, iris):
    matrix = matrix_for(iris.group)
    set_row(matrix, "arp_mitm", {"severity": "low"})

    report(client, iris, "arp_mitm", "ev-1")
    version = deploy(matrix, "alice")
    report(client, iris, "arp_mitm", "ev-2")

    first, second = ThreatEvent.objects.order_by("pk")
    assert (first.severity, first.matrix_version.number) == ("critical", 1)
    assert (second.severity, second.matrix_version.number) == ("low", version.number)


def test_a_deployed_version_never_changes(synced_core, iris):
    matrix = matrix_for(iris.group)
    before = dict(matrix.current.rows["arp_mitm"])

    set_row(matrix, "arp_mitm", {"severity": "low"})

    assert MatrixVersion.objects.get(pk=matrix.current_id).rows["arp_mitm"] == before
    assert draft_rows(matrix)["arp_mitm"]["severity"] == "low"


def test_a_newer_catalog_keeps_the_tenants_settings(synced_core, iris):
    matrix = matrix_for(iris.group)
    set_row(matrix, "arp_mitm", {"severity": "low"})
    deploy(matrix, "alice")
    stored = matrix.current.rows
    # Rows written before a threat existed lack it.
    del stored["spyware_detected"]
    MatrixVersion.objects.filter(pk=matrix.current_id).update(rows=stored)
    matrix.refresh_from_db()

    rows = current_rows(matrix)

    assert rows["arp_mitm"]["severity"] == "low"
    assert rows["spyware_detected"]["severity"] == "critical"


@pytest.mark.parametrize(
    ("threat", "changes", "field"),
    [
        ("nope", {"severity": "low"}, "threat_id"),
        ("arp_mitm", {"severity": "scary"}, "severity"),
        ("arp_mitm", {"enabled": "yes"}, "enabled"),
        ("arp_mitm", {"device_action": "self_destruct"}, "device_action"),
        ("arp_mitm", {"mdm_action": 999999}, "mdm_action"),
        ("arp_mitm", {"mdm_action": True}, "mdm_action"),
        ("arp_mitm", {"mitigation": "maybe"}, "mitigation"),
        ("arp_mitm", {"mitigation": "remove"}, "mitigation"),
        ("arp_mitm", {"colour": "red"}, "colour"),
    ],
)
def test_bad_rows_name_the_field_and_change_nothing(synced_core, iris, threat, changes, field):
    matrix = matrix_for(iris.group)

    with pytest.raises(InvalidInput) as error:
        set_row(matrix, threat, changes)

    matrix.refresh_from_db()
    assert error.value.field == field
    assert matrix.draft == {}


def test_an_unmitigable_threat_cant_be_set_to_remove(synced_core, iris):
    with pytest.raises(InvalidInput) as error:
        set_row(
            matrix_for(iris.group),
            "system_tampering",
            {"mdm_action": target(synced_core, "MTD-Quarantine").pk, "mitigation": "remove"},
        )

    assert error.value.field == "mitigation"


def test_a_target_that_cant_be_used_is_refused(synced_core, iris):
    selected = target(synced_core, "Executives")

    with pytest.raises(InvalidInput) as error:
        set_row(matrix_for(iris.group), "arp_mitm", {"mdm_action": selected.pk})

    assert "selected for sync" in error.value.message


def test_handled_on_device_exists_only_for_core(synced_cloud, carl):
    with pytest.raises(InvalidInput) as error:
        set_row(matrix_for(carl.group), "arp_mitm", {"mdm_action": "on_device"})

    assert error.value.field == "mdm_action"
