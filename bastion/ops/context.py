"""The id of the request or background run a log line belongs to, per thread or task."""

import contextvars
import re
import secrets

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
run_id: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="")

# An id from a proxy is kept only when it can't smuggle anything into a log line.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,64}$")


def new_id() -> str:
    return secrets.token_hex(8)


def accept_or_new(candidate: str | None) -> str:
    if candidate and _SAFE_ID.match(candidate):
        return candidate
    return new_id()
