"""The one door every MobileIron call goes through.

`HttpClient` checks the URL, sends Basic credentials on every request, retries what is
worth retrying, and turns every answer that is not a usable 2xx into one of the
exceptions of `base`. Nothing above it sees httpx.
"""

import functools
import json
import logging
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from bastion.mdm.connectors.base import (
    BadUrl,
    Forbidden,
    InvalidAnswer,
    MdmError,
    NotFound,
    TlsError,
    Transient,
    Unauthorized,
    Unreachable,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
# Extra attempts after the first one: four tries in all.
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0
MAX_RETRY_AFTER = 120.0
MAX_BODY_BYTES = 64 * 1024 * 1024
# MDM messages end up in run messages and pages; a long one is noise, or an attack.
MAX_MESSAGE_CHARS = 300
USER_AGENT = "Bastion-MTD"

# (method, path template, HTTP status or 0 when nothing answered, seconds)
OnResponse = Callable[[str, str, int, float], None]

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def check_url(url: Any, *, allow_http: bool = False) -> str:
    """Returns the MDM base URL, normalised; raises BadUrl saying what is wrong with it.

    Messages never repeat the URL: it may hold a password someone pasted into it.
    """
    if not isinstance(url, str) or not url.strip():
        raise BadUrl("enter the address of the MDM, for example https://mdm.example.com")
    url = url.strip()
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise BadUrl("the address contains spaces or control characters")
    if "://" not in url:
        raise BadUrl("the address must start with https://")

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadUrl("the host or port in the address is not valid") from None
    scheme = parts.scheme.lower()
    if scheme == "http" and not allow_http:
        raise BadUrl(
            "only https addresses are allowed "
            "(BASTION_ALLOW_HTTP_MDM=true permits http for a lab or the emulator)"
        )
    if scheme not in ("http", "https"):
        raise BadUrl(f"the address must start with https://, not {scheme[:20]}://")
    if "@" in parts.netloc:
        raise BadUrl(
            "the address must not contain a username or password; enter them in their own fields"
        )
    if not parts.hostname:
        raise BadUrl("the address has no host name")
    if port == 0:
        raise BadUrl("the host or port in the address is not valid")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise BadUrl("the address must not contain ? or #")

    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def parse_retry_after(value: str | None, *, cap: float = MAX_RETRY_AFTER) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, min(when.timestamp() - time.time(), cap))


def mdm_message(body: bytes) -> str:
    """The MDM's own explanation in an error body (Core or Cloud shape), cleaned, or ""."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return ""
    return message_in(data)


def message_in(data: Any) -> str:
    """The explanation inside a decoded answer: Core `messages`, Cloud `errors`."""
    if not isinstance(data, dict):
        return ""

    found: list[str] = []

    # Core: {"messages": [{"localizedMessage": ..., "messageKey": ...}]}
    messages = data.get("messages")
    if isinstance(messages, dict):
        messages = [messages]
    if isinstance(messages, list):
        for item in messages:
            if isinstance(item, dict):
                text = item.get("localizedMessage") or item.get("message") or item.get("messageKey")
                if isinstance(text, str):
                    found.append(text)

    # Cloud: {"errors": {"globalErrors": [...], "fieldErrors": [{"field", "message"}]}}
    errors = data.get("errors")
    if isinstance(errors, dict):
        for item in errors.get("globalErrors") or []:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict) and isinstance(item.get("message"), str):
                found.append(item["message"])
        for item in errors.get("fieldErrors") or []:
            if isinstance(item, dict):
                field, text = item.get("field"), item.get("message")
                if isinstance(field, str) and isinstance(text, str):
                    found.append(f"{field}: {text}")
                elif isinstance(text, str):
                    found.append(text)

    for key in ("message", "error"):
        if not found and isinstance(data.get(key), str):
            found.append(data[key])

    return clean_message("; ".join(found))


def clean_message(text: str) -> str:
    text = _UNPRINTABLE.sub(" ", text).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def error_for(
    status: int, headers: httpx.Headers, body: bytes, *, role: str | None = None
) -> MdmError | None:
    """The exception an answer stands for, or None when it is a success to parse."""
    if 200 <= status < 300:
        return None

    message = mdm_message(body)
    suffix = f": {message}" if message else ""

    if 300 <= status < 400:
        return BadUrl(redirect_message(headers.get("location", "")), status=status)
    if status == 401:
        return Unauthorized("the MDM rejected the username or password", status=status)
    if status == 403:
        needs = f"; the account needs the role {role}" if role else ""
        return Forbidden(f"the MDM refused access{needs}{suffix}", role=role, status=status)
    if status == 404:
        return NotFound(f"the MDM answered 404 not found{suffix}", status=status)
    if status == 429 or status >= 500:
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"))
        return Transient(
            f"the MDM answered {status}{suffix}", status=status, retry_after=retry_after
        )
    return InvalidAnswer(f"the MDM refused the request ({status}){suffix}", status=status)


def redirect_message(location: str) -> str:
    # Only the host is named: the rest of a login redirect can carry tokens.
    try:
        target = urlsplit(location)
        host = target.hostname
    except ValueError:
        host = None
    if not host:
        return "the MDM answered with a redirect; check the path of the address"
    return f"the MDM redirected to {clean_message(host)[:255]}; enter that address instead"


def parse_json(body: bytes) -> Any:
    """Decodes a JSON answer; bytes that are not UTF-8 survive as lone surrogates.

    That way one bad record can be skipped by the parser instead of failing the page.
    """
    text = body.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    if not text.strip():
        return None
    try:
        return json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError):
        raise InvalidAnswer("the MDM answered something that is not JSON") from None


def _parse_int(digits: str) -> int | str:
    # An absurd number stays a string, so the record holding it is skipped (too long)
    # instead of Python refusing to convert it and failing the whole page.
    return int(digits) if len(digits) <= 40 else digits


def _is_tls_failure(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _tls_message(error: BaseException) -> str:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ssl.SSLCertVerificationError):
            reason = current.verify_message or "verification failed"
            return f"the MDM's certificate could not be verified: {clean_message(reason)}"
        if isinstance(current, ssl.SSLError) and current.reason:
            return f"the TLS handshake with the MDM failed: {clean_message(str(current.reason))}"
        current = current.__cause__ or current.__context__
    return "the TLS handshake with the MDM failed"


class HttpClient:
    """An httpx.Client bound to one MDM account, plus the rules every call follows."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        allow_http: bool = False,
        ca_bundle: str | None = None,
        verify_tls: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_retry_after: float = MAX_RETRY_AFTER,
        max_bytes: int = MAX_BODY_BYTES,
        on_response: OnResponse | None = None,
    ):
        self.base_url = check_url(base_url, allow_http=allow_http)
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.max_retry_after = max_retry_after
        self.max_bytes = max_bytes
        self.on_response = on_response

        if not verify_tls:
            log.warning("TLS verification is off for an MDM connection")
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(username or "", password or ""),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout),
            verify=_ssl_context(ca_bundle) if verify_tls else False,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def retries_at_most(self, count: int) -> Iterator[None]:
        """Fewer retries for a while: a person waiting on a connection test wants an
        answer in seconds, not after the full backoff."""
        saved = self.retries
        self.retries = min(saved, count)
        try:
            yield
        finally:
            self.retries = saved

    def request(
        self,
        method: str,
        template: str,
        *,
        path: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        role: str | None = None,
    ) -> Any:
        """Sends one call (retrying transient failures) and returns its decoded JSON.

        `template` is the path with `{name}` holes filled from `path`, each value quoted
        whole, so a label called "a/b" stays one path segment. `role` names what a 403
        would mean for this call.
        """
        values = {key: quote(str(value), safe="") for key, value in (path or {}).items()}
        if any(value in ("", ".", "..") for value in values.values()):
            # Such a segment would vanish or climb a level: another call than the one meant.
            raise InvalidAnswer(f"{template}: an empty, '.' or '..' id can't name an object")
        url_path = template.format(**values)

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda error: isinstance(error, MdmError) and error.retryable),
            before_sleep=lambda state: self._log_retry(method, template, state),
            reraise=True,
        )
        return retrying(self._send_once, method, template, url_path, params, json_body, role)

    def _send_once(self, method, template, url_path, params, json_body, role) -> Any:
        started = time.monotonic()
        status = 0
        try:
            with self._client.stream(method, url_path, params=params, json=json_body) as answer:
                status = answer.status_code
                body = self._read(answer)
                headers = answer.headers
        except httpx.ConnectTimeout:
            raise Unreachable("the MDM did not accept a connection in time") from None
        except httpx.TimeoutException:
            raise Transient("the MDM did not answer in time") from None
        except httpx.ConnectError as error:
            if _is_tls_failure(error):
                raise TlsError(_tls_message(error)) from None
            raise Unreachable(f"could not connect to the MDM: {_reason(error)}") from None
        except httpx.TransportError as error:
            if _is_tls_failure(error):
                raise TlsError(_tls_message(error)) from None
            raise Transient(f"the connection to the MDM dropped: {_reason(error)}") from None
        finally:
            self._report(method, template, status, time.monotonic() - started)

        error = error_for(status, headers, body, role=role)
        if error is not None:
            log.info("mdm call failed method=%s path=%s status=%s", method, template, status)
            raise error
        return parse_json(body)

    def _read(self, answer: httpx.Response) -> bytes:
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise InvalidAnswer(f"the MDM's answer is larger than {self.max_bytes} bytes")

        chunks: list[bytes] = []
        size = 0
        for chunk in answer.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise InvalidAnswer(f"the MDM's answer is larger than {self.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        jitter = random.uniform(0, self.backoff)
        if isinstance(error, MdmError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after) + jitter
        exponential = self.backoff * 2 ** (state.attempt_number - 1)
        return min(exponential, self.max_retry_after) * random.uniform(0.5, 1.0) + jitter / 2

    def _log_retry(self, method: str, template: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "mdm call retrying method=%s path=%s attempt=%d status=%s wait=%.2f",
            method,
            template,
            state.attempt_number,
            getattr(error, "status", None),
            state.next_action.sleep if state.next_action else 0.0,
        )

    def _report(self, method: str, template: str, status: int, seconds: float) -> None:
        log.debug(
            "mdm call method=%s path=%s status=%s seconds=%.3f", method, template, status, seconds
        )
        if self.on_response is None:
            return
        try:
            self.on_response(method, template, status, seconds)
        except Exception:
            # Metrics must never break a sync.
            log.exception("on_response hook failed")


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The verifying TLS context for a CA bundle (None: the trusted public roots).

    Loading a bundle costs tens of milliseconds, which every MDM action delivered would
    pay; contexts are shared (they are not changed after creation) and a bundle is read
    again when its file changes.
    """
    if not ca_bundle:
        return _cached_context(None, None)
    try:
        stamp = os.stat(ca_bundle).st_mtime_ns
        return _cached_context(ca_bundle, stamp)
    except (OSError, ssl.SSLError) as error:
        raise TlsError(f"the CA bundle can't be read: {clean_message(str(error))}") from None


@functools.lru_cache(maxsize=32)
def _cached_context(ca_bundle: str | None, stamp: int | None) -> ssl.SSLContext:
    if ca_bundle is None:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=ca_bundle)


def _reason(error: BaseException) -> str:
    text = clean_message(str(error)) or type(error).__name__
    return text[:120]
