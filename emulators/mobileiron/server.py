"""HTTP server hosting an emulated MobileIron Core and/or Cloud, plus the /_emulator control API.

With `product="both"` Core answers under `/core` and Cloud under `/cloud`; with a single
product it answers at the root. Everything runs on stdlib `http.server` with keep-alive.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from . import cloud as cloud_module
from . import core as core_module
from .cloud import CloudApp
from .common import HttpError, ProductApp, Request, Response, dumps, parse_basic
from .control import Control
from .core import CoreApp
from .faults import FaultRule, FaultSet
from .fleet import Fleet, load_fleet
from .replay import ReplayStore

PRODUCTS = ("core", "cloud")
_RENDER_ERROR = {"core": core_module.render_error, "cloud": cloud_module.render_error}


class RequestLog:
    """The last `size` MDM requests (method, path, status...) and a running count."""

    def __init__(self, size: int = 10_000):
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.count = 0

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)
            self.count += 1

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
            self.count = 0

    def snapshot(self, limit: int | None = None, product: str | None = None) -> dict[str, Any]:
        with self._lock:
            entries = [e for e in self._entries if product is None or e["product"] == product]
            count = self.count
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        return {"count": count, "entries": entries}


class Emulator:
    """The transport-free part: routing, auth, faults, replay and the product apps."""

    def __init__(
        self,
        fleet: Fleet | dict | str | Path | None = None,
        *,
        product: str = "both",
        faults: list[FaultRule] | None = None,
        replay: str | Path | None = None,
        replay_fallback: bool = False,
        log_size: int = 10_000,
    ):
        if product not in ("both", *PRODUCTS):
            raise ValueError("product must be 'core', 'cloud' or 'both'")
        wanted = PRODUCTS if product == "both" else (product,)
        self.fleet = load_fleet(fleet) if fleet is not None else None
        self.apps: dict[str, ProductApp] = {}
        if self.fleet is not None:
            if "core" in wanted and self.fleet.core is not None:
                self.apps["core"] = CoreApp(self.fleet)
            if "cloud" in wanted and self.fleet.cloud is not None:
                self.apps["cloud"] = CloudApp(self.fleet)
        self.replay = ReplayStore(replay) if replay is not None else None
        self.replay_fallback = replay_fallback
        served = set(self.apps) | set(self.replay.products if self.replay else ())
        self.products = [p for p in wanted if p in served]
        if not self.products:
            raise ValueError("nothing to serve: give a fleet with this product or recordings")
        self.prefixes = {p: (f"/{p}" if product == "both" else "") for p in self.products}
        self.faults = FaultSet(faults)
        self.log = RequestLog(log_size)
        self.stop_event = threading.Event()
        self.control = Control(self)

    def _split(self, raw_path: str) -> tuple[str | None, str]:
        for product, prefix in self.prefixes.items():
            if not prefix:
                return product, raw_path
            if raw_path == prefix or raw_path.startswith(prefix + "/"):
                return product, raw_path[len(prefix) :] or "/"
        return None, raw_path

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> Response | None:
        """Answer one request; None means drop the connection without answering."""
        raw_path, _, raw_query = target.partition("?")
        if raw_path == "/_emulator" or raw_path.startswith("/_emulator/"):
            return self.control.handle(method, raw_path, raw_query, body)
        product, path = self._split(raw_path)
        if product is None:
            return Response(
                404, dumps({"error": "unknown path", "path": raw_path, "products": self.prefixes})
            )
        started = time.perf_counter()
        credentials = parse_basic(headers.get("Authorization"))
        username = credentials[0] if credentials else None
        response = self._serve(product, method, path, raw_query, headers, body, credentials)
        self.log.add(
            {
                "t": int(time.time() * 1000),
                "product": product,
                "method": method,
                "path": path + (f"?{raw_query}" if raw_query else ""),
                "status": response.status if response is not None else None,
                "user": username,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )
        return response

    def _serve(self, product, method, path, raw_query, headers, body, credentials):
        app = self.apps.get(product)
        render = _RENDER_ERROR[product]
        username = credentials[0] if credentials else None
        target = path + (f"?{raw_query}" if raw_query else "")

        decision = self.faults.before(product, method, target, username)
        if decision.latency_ms:
            self.stop_event.wait(decision.latency_ms / 1000)
        if decision.action == "hang":
            self.stop_event.wait(float(decision.rule.params.get("seconds") or 30))
            return None
        if decision.action == "expire_credentials":
            return self._unauthorized(render, "Credentials are no longer valid")
        if decision.action == "throttle":
            retry_after = str(decision.rule.params.get("retry_after", 1))
            return render(
                HttpError(429, "Too many requests", headers=[("Retry-After", retry_after)])
            )
        if decision.action == "error":
            status = int(decision.rule.params.get("status") or 500)
            override = decision.rule.params.get("body")
            if override is not None:
                return Response(status, str(override).encode(), [], "text/html")
            return render(HttpError(status, "Internal server error (injected fault)"))

        query = parse_qs(raw_query, keep_blank_values=True)
        response = None
        if self.replay is not None and product in self.replay.products:
            if credentials is None:
                return self._unauthorized(render, "Authentication required")
            recording = self.replay.match(product, method, path, query, body)
            if recording is not None:
                response = ReplayStore.respond(recording)
            elif not (self.replay_fallback and app is not None):
                response = ReplayStore.missing(product, method, path, raw_query)
        if response is None:
            if app is None:
                return render(HttpError(404, f"No such resource: {path}"))
            account = app.authenticate(credentials)
            if account is None:
                return self._unauthorized(render, "Invalid credentials")
            request = Request(method, product, path, query, headers, body, account)
            hook = self.faults.page_hook(product, method, target, username)
            if hook is not None:
                request.page_fault = hook
            response = app.dispatch(request)

        if decision.malformed and response.body:
            response = Response(
                response.status,
                response.body[: max(1, len(response.body) // 2)],
                response.headers,
                response.content_type,
            )
        return response

    @staticmethod
    def _unauthorized(render, message: str) -> Response:
        return render(
            HttpError(401, message, headers=[("WWW-Authenticate", 'Basic realm="MobileIron"')])
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MobileIronEmulator/1.0"
    # Idle keep-alive connections give their thread back after this many seconds.
    timeout = 120

    def setup(self):
        super().setup()
        # Responses go out in one write; no Nagle delay on keep-alive connections.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            response = self.server.emulator.handle(self.command, self.path, self.headers, body)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the connection thread
            response = Response(500, dumps({"error": "emulator failure", "detail": repr(exc)}))
        if response is None:
            self.close_connection = True
            return
        head = [
            f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        head += [f"{name}: {value}" for name, value in response.headers]
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            payload += response.body
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator):
        super().__init__(address, _Handler)
        self.emulator = emulator


class EmulatorHandle:
    """A running emulator: URLs, direct access to its state, and stop()."""

    def __init__(self, server: EmulatorServer, thread: threading.Thread):
        self.server = server
        self.emulator = server.emulator
        # The live fleet: the emulator mutates it as calls and control requests arrive.
        self.fleet = server.emulator.fleet
        self.thread = thread
        host, port = server.server_address[:2]
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    def base_url(self, product: str) -> str:
        if product not in self.emulator.prefixes:
            raise KeyError(f"{product} is not served here")
        return self.url + self.emulator.prefixes[product]

    def urls(self) -> dict[str, str]:
        out = {p: self.base_url(p) for p in self.emulator.products}
        out["control"] = self.url + "/_emulator"
        return out

    @property
    def core(self) -> CoreApp | None:
        return self.emulator.apps.get("core")

    @property
    def cloud(self) -> CloudApp | None:
        return self.emulator.apps.get("cloud")

    def set_faults(self, rules: list[FaultRule | dict]) -> None:
        self.emulator.faults.set(
            [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        )

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    def requests(self) -> dict[str, Any]:
        return self.emulator.log.snapshot()

    def stop(self) -> None:
        self.emulator.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_emulator(
    fleet: Fleet | dict | str | Path | None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    product: str = "both",
    faults: list[FaultRule | dict] | None = None,
    replay: str | Path | None = None,
    replay_fallback: bool = False,
) -> EmulatorHandle:
    """Serve `fleet` (a Fleet, fleet dict or fleet file path) on a background thread."""
    rules = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in faults or ()]
    emulator = Emulator(
        fleet, product=product, faults=rules, replay=replay, replay_fallback=replay_fallback
    )
    server = EmulatorServer((host, port), emulator)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"mobileiron-emulator-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return EmulatorHandle(server, thread)
