"""The HTTP choke point, over real loopback HTTP against a scripted server."""

import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bastion.mdm.connectors.base import (
    BadUrl,
    Forbidden,
    InvalidAnswer,
    NotFound,
    TlsError,
    Transient,
    Unauthorized,
    Unreachable,
)
from bastion.mdm.connectors.http import HttpClient, check_url, parse_retry_after

from .conftest import Answer

PASSWORD = "s3cret-Pa55"


def client(url: str, **options) -> HttpClient:
    options.setdefault("allow_http", True)
    options.setdefault("backoff", 0.01)
    return HttpClient(url, "api-admin", PASSWORD, **options)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("", "enter the address"),
        ("core.example.com", "must start with https://"),
        ("core.example.com:8443", "must start with https://"),
        ("ftp://core.example.com", "not ftp://"),
        ("https://", "no host"),
        ("https://admin:pw@core.example.com", "must not contain a username or password"),
        ("https://core.example.com:99999", "port"),
        ("https://core.example.com:0", "port"),
        ("https://[::1", "host or port"),
        ("https://core.example.com/?x=1", "must not contain ? or #"),
        ("https://core.example.com/#top", "must not contain ? or #"),
        ("https://core example.com", "spaces"),
        ("http://core.example.com", "only https"),
    ],
)
def test_unusable_urls_are_refused_up_front(url, complaint):
    with pytest.raises(BadUrl) as refused:
        check_url(url)

    assert complaint in str(refused.value)
    assert "pw@" not in str(refused.value)


def test_urls_are_normalised_and_http_passes_only_when_allowed():
    assert check_url(" HTTPS://core.example.com/company/rest/ ") == (
        "https://core.example.com/company/rest"
    )
    assert check_url("http://10.0.0.5:8080", allow_http=True) == "http://10.0.0.5:8080"


def test_basic_credentials_and_accept_header_go_with_the_first_request(scripted):
    scripted.then(Answer(body={"results": {}}))

    client(scripted.url).request("GET", "/api/v2/ping")

    headers = {k.lower(): v for k, v in scripted.seen[0].headers.items()}
    assert headers["authorization"] == "Basic YXBpLWFkbWluOnMzY3JldC1QYTU1"
    assert headers["accept"] == "application/json"
    assert len(scripted.seen) == 1


def test_a_hosted_core_base_path_is_kept(scripted):
    scripted.then(Answer(body={}))

    client(scripted.url + "/acme/rest/").request("GET", "/api/v2/ping")

    assert scripted.seen[0].path == "/acme/rest/api/v2/ping"


def test_path_values_stay_one_segment_whatever_they_hold(scripted):
    scripted.then(Answer(body={}))

    client(scripted.url).request(
        "PUT", "/api/v2/devices/labels/{name}/add", path={"name": "Threat a+b/c&d %"}
    )

    assert scripted.seen[0].path == "/api/v2/devices/labels/Threat%20a%2Bb%2Fc%26d%20%25/add"


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, {}, Unauthorized, "username or password"),
        (403, {}, Forbidden, "needs the role View label"),
        (
            404,
            {"messages": [{"localizedMessage": "Device not found"}]},
            NotFound,
            "Device not found",
        ),
        (
            400,
            {"messages": [{"type": "Error", "localizedMessage": "limit must be at most 200"}]},
            InvalidAnswer,
            "limit must be at most 200",
        ),
        (
            400,
            {
                "errors": {
                    "globalErrors": None,
                    "fieldErrors": [
                        {"code": "Range", "message": "must be between 1 and 500", "field": "rows"}
                    ],
                },
                "result": None,
            },
            InvalidAnswer,
            "rows: must be between 1 and 500",
        ),
        (409, "<html>conflict</html>", InvalidAnswer, "(409)"),
    ],
)
def test_status_codes_map_to_connector_errors(scripted, status, body, error, text):
    scripted.then(Answer(status, body))

    with pytest.raises(error) as raised:
        client(scripted.url).request("GET", "/api/v2/labels/label_summary", role="View label")

    assert text in str(raised.value)
    assert raised.value.status == status
    assert len(scripted.seen) == 1  # not retried


def test_forbidden_carries_the_role_of_the_call(scripted):
    scripted.then(Answer(403))

    with pytest.raises(Forbidden) as raised:
        client(scripted.url).request("GET", "/x", role="View device")

    assert raised.value.role == "View device"


def test_a_5xx_is_retried_and_the_next_answer_used(scripted):
    scripted.then(Answer(502, "bad gateway"), Answer(503), Answer(body={"ok": 1}))

    assert client(scripted.url).request("GET", "/x") == {"ok": 1}
    assert len(scripted.seen) == 3


def test_tries_are_bounded(scripted):
    scripted.then(Answer(500))

    with pytest.raises(Transient):
        client(scripted.url, retries=3).request("GET", "/x")

    assert len(scripted.seen) == 4


def test_retry_after_seconds_are_honoured(scripted):
    scripted.then(Answer(429, headers={"Retry-After": "1"}), Answer(body=[]))

    started = time.monotonic()
    assert client(scripted.url).request("GET", "/x") == []

    assert time.monotonic() - started >= 0.9
    assert len(scripted.seen) == 2


def test_retry_after_is_capped(scripted):
    scripted.then(Answer(503, headers={"Retry-After": "3600"}), Answer(body=[]))

    started = time.monotonic()
    client(scripted.url, max_retry_after=0.2).request("GET", "/x")

    assert time.monotonic() - started < 5


def test_retry_after_parses_seconds_and_http_dates():
    later = datetime.now(UTC) + timedelta(seconds=30)

    assert parse_retry_after("7") == 7.0
    assert 25 <= parse_retry_after(format_datetime(later, usegmt=True)) <= 30
    assert parse_retry_after("600") == 120.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(format_datetime(datetime(2001, 1, 1, tzinfo=UTC), usegmt=True)) == 0


@pytest.mark.parametrize("body", [b"{not json", b"<html>login</html>", b'{"a": [1, 2'])
def test_malformed_json_is_an_invalid_answer_and_not_retried(scripted, body):
    scripted.then(Answer(body=body))

    with pytest.raises(InvalidAnswer, match="not JSON"):
        client(scripted.url).request("GET", "/x")

    assert len(scripted.seen) == 1


def test_an_oversized_answer_is_refused(scripted):
    scripted.then(Answer(body={"results": ["x" * 5000]}))

    with pytest.raises(InvalidAnswer, match="larger than 1024 bytes"):
        client(scripted.url, max_bytes=1024).request("GET", "/x")


def test_a_redirect_is_not_followed_and_names_the_host(scripted):
    scripted.then(
        Answer(302, headers={"Location": "https://login.evil.example/sso?token=abc"}),
        Answer(body={}),
    )

    with pytest.raises(BadUrl) as raised:
        client(scripted.url).request("GET", "/api/v2/ping")

    assert "login.evil.example" in str(raised.value)
    assert "token" not in str(raised.value)
    assert len(scripted.seen) == 1


def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(Unreachable):
        client(f"http://127.0.0.1:{port}", retries=1).request("GET", "/x")


def test_a_slow_answer_times_out_as_transient(scripted):
    def slow(_seen):
        time.sleep(1.0)
        return Answer(body={})

    scripted.then(slow)

    with pytest.raises(Transient, match="in time"):
        client(scripted.url, timeout=0.2, retries=0).request("GET", "/x")


def test_a_dropped_connection_is_transient_and_retried():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []

    def drop():
        while len(accepted) < 2:
            connection, _ = listener.accept()
            accepted.append(connection)
            connection.recv(65536)
            connection.close()

    threading.Thread(target=drop, daemon=True).start()
    port = listener.getsockname()[1]

    with pytest.raises(Transient, match="dropped"):
        client(f"http://127.0.0.1:{port}", retries=1).request("GET", "/x")

    assert len(accepted) == 2
    listener.close()


def test_an_unknown_certificate_is_a_tls_error(tls_server):
    tls_server.then(Answer(body={}))

    with pytest.raises(TlsError, match="certificate"):
        client(tls_server.url, retries=0).request("GET", "/x")


def test_a_ca_bundle_makes_the_certificate_trusted(tls_server, self_signed):
    tls_server.then(Answer(body={"ok": True}))

    answer = client(tls_server.url, ca_bundle=str(self_signed.cert_file)).request("GET", "/x")

    assert answer == {"ok": True}


def test_an_unreadable_ca_bundle_is_a_tls_error(tmp_path):
    with pytest.raises(TlsError, match="CA bundle"):
        client("https://core.example.com", ca_bundle=str(tmp_path / "missing.pem"))


def test_http_is_refused_unless_allowed(scripted):
    with pytest.raises(BadUrl, match="only https"):
        client(scripted.url, allow_http=False)


def test_on_response_gets_the_template_not_the_values(scripted):
    scripted.then(Answer(503), Answer(body={}))
    calls = []

    client(scripted.url, on_response=lambda *call: calls.append(call)).request(
        "GET", "/api/v1/device/{id}", path={"id": 1042}
    )

    assert [(m, p, s) for m, p, s, _ in calls] == [
        ("GET", "/api/v1/device/{id}", 503),
        ("GET", "/api/v1/device/{id}", 200),
    ]
    assert all(seconds >= 0 for *_, seconds in calls)


def test_a_failing_hook_does_not_fail_the_call(scripted):
    scripted.then(Answer(body={"ok": 1}))

    def broken(*_):
        raise RuntimeError("metrics down")

    assert client(scripted.url, on_response=broken).request("GET", "/x") == {"ok": 1}


def test_logs_carry_no_credentials_or_query_values(scripted, caplog):
    scripted.then(Answer(500), Answer(401))
    caplog.set_level(logging.DEBUG, logger="bastion")

    with pytest.raises(Unauthorized):
        client(scripted.url).request("GET", "/api/v1/device", params={"fq": "udid=SECRET-UDID"})

    assert "GET" in caplog.text
    for secret in (PASSWORD, "api-admin", "YXBpLWFkbWlu", "SECRET-UDID"):
        assert secret not in caplog.text
