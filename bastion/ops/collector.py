"""Metrics read from the database at scrape time: the same answer from every web process.

Labels carry integration ids and states, never tenant or integration names.
"""

from django.db.models import Count, Max, Min
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class DatabaseCollector:
    def collect(self):
        from bastion.mdm.models import Integration, SyncRun
        from bastion.ops.models import Heartbeat
        from bastion.threats.models import ResponseAction, ThreatEvent

        now = timezone.now()

        actions = GaugeMetricFamily("bastion_actions", "MDM actions by state.", labels=["state"])
        by_state = dict(
            ResponseAction.objects.values_list("state").annotate(n=Count("pk")).order_by()
        )
        for state, _ in ResponseAction.STATES:
            actions.add_metric([state], by_state.get(state, 0))
        yield actions

        # Open actions: their age says whether delivery keeps up; failed ones wait for a person.
        age = GaugeMetricFamily(
            "bastion_actions_oldest_age_seconds",
            "Age of the oldest action in each state that needs attention.",
            labels=["state"],
        )
        oldest = dict(
            ResponseAction.objects.filter(
                state__in=[ResponseAction.PENDING, ResponseAction.CLAIMED, ResponseAction.FAILED],
                settled=False,
            )
            .values_list("state")
            .annotate(first=Min("created_at"))
            .order_by()
        )
        for state in (ResponseAction.PENDING, ResponseAction.CLAIMED, ResponseAction.FAILED):
            first = oldest.get(state)
            age.add_metric([state], (now - first).total_seconds() if first else 0.0)
        yield age

        yield CounterMetricFamily(
            "bastion_threat_events",
            "Threat events recorded: accepted from agents or raised by inventory checks.",
            value=ThreatEvent.objects.count(),
        )

        runs = CounterMetricFamily(
            "bastion_sync_runs", "Sync runs by trigger and outcome.", labels=["trigger", "status"]
        )
        counted = (
            SyncRun.objects.values_list("trigger", "status").annotate(n=Count("pk")).order_by()
        )
        for trigger, status, count in counted:
            runs.add_metric([trigger, status], count)
        yield runs

        yield from _integrations(Integration, SyncRun)

        beats = GaugeMetricFamily(
            "bastion_heartbeat_timestamp_seconds",
            "When the scheduler ticked, or a worker finished a task, last (Unix time).",
            labels=["process"],
        )
        for name, at in Heartbeat.objects.values_list("name", "at"):
            beats.add_metric([name], at.timestamp())
        yield beats


def _integrations(Integration, SyncRun):  # noqa: N803 - models passed in, imported late
    status = GaugeMetricFamily(
        "bastion_integration_status",
        "1 for each integration's current status.",
        labels=["integration", "status"],
    )
    success = GaugeMetricFamily(
        "bastion_integration_last_success_timestamp_seconds",
        "When each integration last synced completely (Unix time).",
        labels=["integration"],
    )
    for pk, state, last in Integration.objects.values_list("pk", "status", "last_success_at"):
        status.add_metric([str(pk), state], 1)
        if last:
            success.add_metric([str(pk)], last.timestamp())
    yield status
    yield success

    duration = GaugeMetricFamily(
        "bastion_sync_last_duration_seconds",
        "Duration of each integration's last finished sync.",
        labels=["integration", "status"],
    )
    seen = GaugeMetricFamily(
        "bastion_sync_last_devices_seen",
        "Devices seen by each integration's last finished sync.",
        labels=["integration"],
    )
    latest = (
        SyncRun.objects.filter(finished_at__isnull=False, started_at__isnull=False)
        .values("integration_id")
        .annotate(last=Max("pk"))
        .order_by()
    )
    last_ids = [row["last"] for row in latest]
    for run in SyncRun.objects.filter(pk__in=last_ids).only(
        "integration_id", "status", "started_at", "finished_at", "seen"
    ):
        key = str(run.integration_id)
        duration.add_metric([key, run.status], run.duration.total_seconds())
        seen.add_metric([key], run.seen)
    yield duration
    yield seen
