"""Every request gets an id (kept from X-Request-ID when it is safe, else new), one access
log line, and a clear 503 when the database is unreachable instead of a bare 500."""

import logging
import time

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from bastion.ops import context, metrics

log = logging.getLogger("bastion.request")

RETRY_AFTER_SECONDS = 5


class RequestContext:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = context.accept_or_new(request.headers.get("X-Request-ID"))
        token = context.request_id.set(rid)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            seconds = time.monotonic() - started
            response["X-Request-ID"] = rid
            self._log(request, response.status_code, seconds)
            return response
        finally:
            context.request_id.reset(token)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None

        # A restarting database: the transaction rolled back, so nothing was half-written,
        # and the caller can simply try again.
        log.warning("database unavailable: %s", type(exception).__name__)
        metrics.DATABASE_UNAVAILABLE.inc()
        response = JsonResponse(
            {"detail": "the database is unavailable; try again shortly", "field": ""},
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    def _log(self, request, status: int, seconds: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return

        # The path without its query string: searches may hold names or emails.
        extra = {
            "method": request.method,
            "path": request.path[:200],
            "status": status,
            "ms": round(seconds * 1000, 1),
        }
        device = getattr(request, "device", None)
        if device is not None:
            extra["device"] = device.pk
        admin = getattr(request, "admin", None)
        if admin is not None:
            extra["admin"] = admin.pk
        log.info("request", extra=extra)
