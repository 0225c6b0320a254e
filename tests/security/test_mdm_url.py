"""The MDM URL is an administrator's input that Bastion calls with credentials: https only
unless BASTION_ALLOW_HTTP_MDM, redirects to another host never followed, clear errors."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bastion.mdm.models import Integration
from bastion.tenancy.services import create_tenant
from tests.security.helpers import cli


class Recorder(ThreadingHTTPServer):
    """A loopback server that answers every request with one fixed response."""

    def __init__(self, status: int, headers: dict):
        self.status, self.headers, self.seen = status, headers, []
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def _answer(self):
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        self.send_response(self.server.status)
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    started = []

    def start(status=200, headers=None):
        server = Recorder(status, headers or {})
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def acme(db):
    return create_tenant("Acme Url")


EMULATOR_PASSWORD = "secret"


def add(url: str, password: str = EMULATOR_PASSWORD):
    return cli(
        "mdm", "add", "Core EU", "--tenant", "Acme Url", "--kind", "core", "--url", url,
        "--username", "admin", "--password-env", "MI", "--group", "Executives",
        env={"MI": password},
    )  # fmt: skip


def test_plain_http_is_refused_by_default(acme, emulator, settings):
    settings.BASTION_ALLOW_HTTP_MDM = False

    result = add(emulator.base_url("core"))

    assert result.exit_code == 1
    assert "only https addresses are allowed" in result.output
    assert not Integration.objects.exists()
    assert emulator.requests()["count"] == 0


def test_plain_http_works_only_when_the_setting_allows_it(acme, emulator, settings):
    settings.BASTION_ALLOW_HTTP_MDM = True

    result = add(emulator.base_url("core"))

    assert result.exit_code == 0, result.output
    assert Integration.objects.filter(tenant=acme).count() == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://mdm.example.com", "must start with https://"),
        ("file:///etc/passwd", "must start with https://"),
        ("javascript:alert(1)", "must start with https://"),
        ("mdm.example.com", "must start with https://"),
        ("https://admin:pw@mdm.example.com", "must not contain a username or password"),
        ("https://mdm.example.com/?next=x", "must not contain ? or #"),
        ("https://mdm.example.com:99999", "not valid"),
        ("https://", "no host name"),
        ("https://mdm.example.com/\x00", "control characters"),
    ],
)
def test_unusable_addresses_get_a_clear_error_and_store_nothing(acme, url, message):
    result = add(url)

    assert result.exit_code == 1
    assert message in result.output
    assert "pw@" not in result.output
    assert not Integration.objects.exists()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_host_is_not_followed(acme, servers, settings, status):
    settings.BASTION_ALLOW_HTTP_MDM = True
    elsewhere = servers()
    port = elsewhere.server_address[1]
    mdm = servers(status, {"Location": f"http://localhost:{port}/steal?token=abc"})

    result = add(mdm.url, password="s3cret-pass")

    assert result.exit_code == 1
    assert "s3cret-pass" not in result.output
    assert "redirect" in result.output and "localhost" in result.output
    assert "token=abc" not in result.output
    assert mdm.seen, "the MDM was not called at all"
    assert elsewhere.seen == []
    assert not Integration.objects.exists()


def test_a_stored_mdm_that_starts_redirecting_fails_its_connection_test(acme, servers, settings):
    settings.BASTION_ALLOW_HTTP_MDM = True
    elsewhere = servers()
    mdm = servers(302, {"Location": f"http://localhost:{elsewhere.server_address[1]}/"})
    integration = Integration(
        tenant=acme, kind="core", name="Moved", url=mdm.url, username="admin", space_id="1"
    )
    integration.password = "s3cret-pass"
    integration.save()

    result = cli("mdm", "test", "Moved", "--tenant", "Acme Url")

    assert result.exit_code == 1
    assert "s3cret-pass" not in result.output
    assert elsewhere.seen == []


def test_a_stored_http_url_is_refused_once_http_is_no_longer_allowed(acme, emulator, settings):
    settings.BASTION_ALLOW_HTTP_MDM = True
    assert add(emulator.base_url("core")).exit_code == 0
    settings.BASTION_ALLOW_HTTP_MDM = False
    before = emulator.requests()["count"]

    result = cli("mdm", "test", "Core EU", "--tenant", "Acme Url")

    assert result.exit_code == 1
    assert "https" in result.output
    assert emulator.requests()["count"] == before
