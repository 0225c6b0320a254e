"""Request ids and JSON log lines, without personal data."""

import json
import logging

from bastion.ops import context
from bastion.ops.logs import JsonFormatter
from tests.threats.conftest import report


def test_every_answer_carries_a_request_id(client, db):
    first = client.get("/health")
    second = client.get("/health")

    assert len(first["X-Request-ID"]) == 16
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_safe_request_id_from_a_proxy_is_kept(client, db):
    answer = client.get("/health", headers={"X-Request-ID": "proxy-4f2a9c1e"})

    assert answer["X-Request-ID"] == "proxy-4f2a9c1e"


def test_an_unsafe_request_id_is_replaced(client, db):
    answer = client.get("/health", headers={"X-Request-ID": 'x" injected\nline'})

    assert answer["X-Request-ID"] != 'x" injected\nline'
    assert len(answer["X-Request-ID"]) == 16


def test_a_device_request_logs_ids_as_one_json_line(client, iris, caplog):
    caplog.set_level(logging.INFO, logger="bastion.request")

    answer = report(client, iris, "arp_mitm", "ev-1")

    (record,) = [r for r in caplog.records if r.name == "bastion.request"]
    line = json.loads(_format_as_in(record, answer["X-Request-ID"]))
    assert line["request_id"] == answer["X-Request-ID"]
    assert line["status"] == 200 and line["device"] == iris.pk
    assert line["path"] == "/api/device/v1/threats"
    assert "\n" not in _format_as_in(record, answer["X-Request-ID"])
    assert "@" not in json.dumps(line), "no email may reach a log line"


def test_a_task_log_line_carries_its_run_id():
    token = context.run_id.set("task-1234abcd")
    try:
        record = logging.makeLogRecord({"name": "bastion.mdm", "msg": "sync started run=%s"})
        record.args = (7,)
        line = json.loads(JsonFormatter().format(record))
    finally:
        context.run_id.reset(token)

    assert line["run_id"] == "task-1234abcd"
    assert line["msg"] == "sync started run=7"
    assert "request_id" not in line


def _format_as_in(record, request_id: str) -> str:
    # The formatter reads the ids of the request being served; replay it for this record.
    token = context.request_id.set(request_id)
    try:
        return JsonFormatter().format(record)
    finally:
        context.request_id.reset(token)
