"""Prometheus metrics.

Counters and histograms that only a process can see (MDM calls, sync durations) live in
prometheus_client's multiprocess files under BASTION_METRICS_DIR, so one scrape of any web
process adds up every web and worker process of the host. Everything the database already
knows (actions pending and failed with their age, runs, events accepted, the scheduler's last
tick) is read from it at scrape time, which is right across any number of hosts.
"""

from prometheus_client import Counter, Histogram

MDM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SYNC_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600)

MDM_CALLS = Counter(
    "bastion_mdm_requests",
    "Calls to MDMs by product, method, path template and HTTP status (0: no answer).",
    ["mdm", "method", "path", "status"],
)
MDM_SECONDS = Histogram(
    "bastion_mdm_request_seconds",
    "Time of one call to an MDM, answer included.",
    ["mdm", "method", "path"],
    buckets=MDM_BUCKETS,
)
SYNC_SECONDS = Histogram(
    "bastion_sync_seconds",
    "Duration of finished syncs by outcome.",
    ["status"],
    buckets=SYNC_BUCKETS,
)
DATABASE_UNAVAILABLE = Counter(
    "bastion_database_unavailable",
    "Requests answered 503 because the database could not be reached.",
)


def mdm_call_observer(kind: str):
    """The connector's on_response hook for an MDM of this product."""

    def observe(method: str, path: str, status: int, seconds: float) -> None:
        MDM_CALLS.labels(kind, method, path, str(status)).inc()
        MDM_SECONDS.labels(kind, method, path).observe(seconds)

    return observe


def sync_finished(status: str, seconds: float) -> None:
    SYNC_SECONDS.labels(status).observe(seconds)
