"""Request, response and routing plumbing shared by the Core and Cloud emulators."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .fleet import Account

JSON_TYPE = "application/json;charset=UTF-8"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = JSON_TYPE


def json_response(obj: Any, status: int = 200, headers: list | None = None) -> Response:
    return Response(status, dumps(obj), headers or [])


class HttpError(Exception):
    """An error answer; each product renders it in its own body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field_errors: list | None = None,
        headers: list | None = None,
        body: Any = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field_errors = field_errors
        self.headers = headers or []
        self.body = body  # a complete body that overrides the product's shape


def _no_page_fault(offset: int, limit: int) -> tuple[int, bool]:
    return offset, False


@dataclass(slots=True)
class Request:
    method: str
    product: str
    path: str  # below the product prefix, still percent-encoded
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    account: Account | None = None
    # Set by the fault layer: maps a requested (offset, limit) to (offset, serve_empty).
    page_fault: Callable[[int, int], tuple[int, bool]] = _no_page_fault

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def int_param(
        self,
        name: str,
        default: int,
        *,
        low: int | None = None,
        high: int | None = None,
        error: Callable[[str], HttpError] | None = None,
    ):
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise (error or _bad_param)(name) from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise (error or _bad_param)(name)
        return value

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise HttpError(400, "Request body is not valid JSON") from None

    def paging(self, offset: int, limit: int) -> tuple[int, bool]:
        return self.page_fault(offset, limit)


def _bad_param(name: str) -> HttpError:
    return HttpError(400, f"Invalid value for parameter '{name}'")


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


@dataclass(slots=True)
class Route:
    method: str
    pattern: re.Pattern
    roles: tuple[str, ...]
    handler: Callable[[Request, re.Match], Response]


class ProductApp:
    """One emulated product: its accounts, routes and error body shape."""

    name = ""

    def __init__(self, accounts: list[Account]):
        self.lock = threading.RLock()
        self.accounts = {a.username: a for a in accounts}
        self.routes: list[Route] = []

    def route(self, method: str, pattern: str, *roles: str):
        def register(handler):
            self.routes.append(Route(method, re.compile(pattern), roles, handler))
            return handler

        return register

    def authenticate(self, credentials: tuple[str, str] | None) -> Account | None:
        if credentials is None:
            return None
        account = self.accounts.get(credentials[0])
        if account is None:
            return None
        if not hmac.compare_digest(account.password.encode(), credentials[1].encode()):
            return None
        return account

    def error(self, err: HttpError) -> Response:
        raise NotImplementedError

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for route in self.routes:
            match = route.pattern.match(req.path)
            if match is None:
                continue
            if route.method != req.method:
                allowed = True
                continue
            missing = [role for role in route.roles if role not in req.account.roles]
            if missing:
                return self.error(
                    HttpError(
                        403,
                        f"Administrator '{req.account.username}' lacks role(s) "
                        f"{', '.join(missing)}",
                    )
                )
            try:
                with self.lock:
                    return route.handler(req, match)
            except HttpError as err:
                return self.error(err)
        if allowed:
            return self.error(HttpError(405, f"Method {req.method} not allowed"))
        return self.error(HttpError(404, f"No such resource: {req.path}"))


class KeyIndex:
    """Case-insensitive string -> devices. A single hit is stored bare, and a key already in
    canonical case reuses the device's own string, to keep 100k-device indexes small."""

    __slots__ = ("_data", "_upper")

    def __init__(self, upper: bool = False):
        self._data: dict[str, Any] = {}
        self._upper = upper

    def _key(self, value: str) -> str:
        key = value.upper() if self._upper else value.lower()
        return value if key == value else key

    def add(self, value: str, item: Any) -> None:
        key = self._key(value)
        current = self._data.get(key)
        if current is None:
            self._data[key] = item
        elif isinstance(current, list):
            current.append(item)
        else:
            self._data[key] = [current, item]

    def get(self, value: str) -> list:
        current = self._data.get(self._key(value))
        if current is None:
            return []
        return list(current) if isinstance(current, list) else [current]

    def first(self, value: str) -> Any:
        found = self.get(value)
        return found[0] if found else None


def page_slice(req: Request, items, offset: int, limit: int):
    """The page of `items` at `offset`, after the paging faults have had their say.

    Returns (page, served_empty). A repeated page is served as if it were the requested one:
    envelopes keep echoing the requested offset, as a server with a stuck cursor would.
    """
    served, empty = req.paging(offset, limit)
    if empty:
        return [], True
    return items[served : served + limit], False
