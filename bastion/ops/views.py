import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from bastion.ops.collector import DatabaseCollector
from bastion.ops.health import readiness


@require_GET
def ready(request):
    ok, checks = readiness()
    return JsonResponse({"ready": ok, "checks": checks}, status=200 if ok else 503)


@require_GET
def metrics(request):
    if not _may_scrape(request):
        return JsonResponse({"detail": "metrics need the metrics token"}, status=403)

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _ThisProcess:
    def collect(self):
        yield from REGISTRY.collect()


def _may_scrape(request) -> bool:
    """With BASTION_METRICS_TOKEN set, a scraper must send it as a bearer token; without
    one, only this machine may scrape."""
    token = settings.BASTION_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
