"""Fixtures for the connector tests: a scripted loopback server, a self-signed certificate.

Every test talks real HTTP over 127.0.0.1; nothing in httpx is patched.
"""

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SHARED = Path(__file__).resolve().parents[3] / "shared"
SAMPLES = SHARED / "reference" / "samples"


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request with the next scripted Answer (the last one repeats)."""

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.script: list[Answer | Callable[[Seen], Answer]] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
                with server.lock:
                    server.seen.append(seen)
                    step = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                answer = step(seen) if callable(step) else step
                body = answer.encoded()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if "Content-Type" not in answer.headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def then(self, *answers: Answer | Callable[[Seen], Answer]) -> "ScriptedServer":
        self.script.extend(answers)
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    server = ScriptedServer()
    yield server
    server.close()


@dataclass
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory) -> Certificate:
    """A certificate for 127.0.0.1 that no default trust store knows."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )

    folder = tmp_path_factory.mktemp("tls")
    cert_file = folder / "cert.pem"
    key_file = folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@pytest.fixture
def tls_server(self_signed):
    server = ScriptedServer(tls_context=self_signed.server_context())
    yield server
    server.close()


# The emulated MobileIron, over real loopback HTTP.

# A fixed "now" keeps generated fleets identical from run to run.
NOW_MS = 1_767_225_600_000
CORE_ADMIN = ("admin", "secret")
CLOUD_ADMIN = ("admin@acme.example", "secret")


def start(fleet):
    from emulators.mobileiron import start_emulator

    return start_emulator(fleet)


def fleet(devices: int = 1100, seed: int = 11):
    from emulators.mobileiron import generate_fleet

    return generate_fleet(devices, seed=seed, now_ms=NOW_MS)


@pytest.fixture(scope="module")
def emulator():
    handle = start(fleet())
    yield handle
    handle.stop()


@pytest.fixture
def mdm(emulator):
    """The module's emulator, with its faults and request log reset after each test."""
    control(emulator, "POST", "/reset-log")
    yield emulator
    emulator.clear_faults()


def control(handle, method: str, path: str, body=None):
    """The emulator's own control API (state, faults), for arranging and asserting."""
    import httpx

    answer = httpx.request(method, f"{handle.url}/_emulator{path}", json=body, timeout=10)
    answer.raise_for_status()
    return answer.json()


def requests_to(handle, path: str) -> list[dict]:
    """What the emulated MDM received on `path` since the test began."""
    return [
        entry
        for entry in control(handle, "GET", "/requests")["entries"]
        if entry["path"].split("?")[0] == path
    ]


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
