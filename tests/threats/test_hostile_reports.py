"""Agent reports the database can't hold must be refused by name, never answered 500."""

import pytest
from django.test import Client

from bastion.threats.models import ThreatEvent
from tests.threats.conftest import mitigate, report, respond


@pytest.fixture
def server():
    """A client that answers like the server would: a crash is a 500, not an exception."""
    return Client(raise_request_exception=False)


def test_a_time_near_year_one_is_refused_naming_the_field(server, iris):
    # 00:30 at +01:00 on 1 January of year 1 is before year 1 in UTC.
    answer = report(server, iris, "arp_mitm", "e1", detected_at="0001-01-01T00:30:00+01:00")

    assert answer.status_code == 422, answer.content[:200]
    assert "detected_at" in answer.content.decode()
    assert not ThreatEvent.objects.exists()


def test_a_mitigation_time_near_year_one_is_refused(server, iris):
    answer = mitigate(
        server, iris, "e1", threat_id="arp_mitm", mitigated_at="0001-01-01T00:30:00+01:00"
    )

    assert answer.status_code == 422, answer.content[:200]
    assert "mitigated_at" in answer.content.decode()


def test_details_with_a_nul_character_are_refused(server, iris):
    answer = report(server, iris, "arp_mitm", "e1", details={"network_name": "a\u0000b"})

    assert answer.status_code == 422, answer.content[:200]
    assert "NUL" in answer.content.decode()
    assert not ThreatEvent.objects.exists()


@pytest.mark.parametrize("event_id", ["e%001", "has space", "x" * 65])
def test_a_mitigation_for_an_event_id_reports_could_not_use_is_refused(server, iris, event_id):
    answer = mitigate(server, iris, event_id, threat_id="arp_mitm")

    assert answer.status_code == 422, (answer.status_code, answer.content[:200])
    assert answer.json()["field"] == "event_id"
    assert not ThreatEvent.objects.exists()


def test_a_mitigation_before_its_report_takes_the_groups_severity(client, iris):
    respond(iris.group, "arp_mitm", severity="low")

    first = mitigate(client, iris, "e1", threat_id="arp_mitm")
    later = report(client, iris, "arp_mitm", "e1")

    assert first.status_code == later.status_code == 200
    assert later.json()["severity"] == "low"
