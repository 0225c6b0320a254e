"""Threat figures for pages that are not about threats (the dashboard, a device's page)."""

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from bastion.console import charts
from bastion.threats.catalog import SEVERITIES, catalog
from bastion.threats.matrix import matrix_for
from bastion.threats.models import ResponseAction, ThreatEvent

CHART_DAYS = 30


def dashboard_summary(tenant) -> dict:
    today = timezone.localdate()
    first = today - timedelta(days=CHART_DAYS - 1)
    since = timezone.make_aware(
        timezone.datetime.combine(first, timezone.datetime.min.time()),
        timezone.get_current_timezone(),
    )
    rows = (
        ThreatEvent.objects.filter(tenant=tenant, detected_at__gte=since)
        .annotate(day=TruncDate("detected_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day", "severity")
        .annotate(n=Count("pk"))
        .order_by()
    )
    days = [first + timedelta(days=offset) for offset in range(CHART_DAYS)]
    index = {day: position for position, day in enumerate(days)}
    series = {severity: [0] * CHART_DAYS for severity in SEVERITIES}
    for day, severity, count in rows:
        if day in index and severity in series:
            series[severity][index[day]] += count

    threats_url = reverse("console:threats")
    return {
        "threats_available": True,
        "threat_days": CHART_DAYS,
        "threat_chart": charts.stacked_columns([day.isoformat() for day in days], series),
        "open_threats": ThreatEvent.objects.filter(
            tenant=tenant, state=ThreatEvent.ACTIVE, ignored=False
        ).count(),
        "failed_actions": ResponseAction.objects.filter(
            tenant=tenant, state=ResponseAction.FAILED
        ).count(),
        "open_threats_url": f"{threats_url}?state=active",
        "failed_actions_url": f"{threats_url}?outcome=failed",
    }


def device_threats(tenant, device) -> list[dict]:
    names = {threat.id: threat.name for threat in catalog().threats.values()}
    events = ThreatEvent.objects.filter(tenant=tenant, device=device).order_by("-detected_at")
    return [
        {
            "url": reverse("console:threat", args=[event.pk]),
            "when": event.detected_at,
            "name": names.get(event.threat_id, event.threat_id),
            "severity": event.severity,
            "state": event.get_state_display(),
        }
        for event in events[:100]
    ]


def device_matrix(device) -> dict:
    matrix = matrix_for(device.group)
    return {
        "version": matrix.current.number,
        "deployed_at": matrix.current.deployed_at,
        "url": reverse("console:policy") + f"?group={device.group_id}",
    }
