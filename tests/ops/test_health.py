"""Readiness: the database, the broker and the scheduler's last tick."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bastion.celery import app
from bastion.ops import signals
from bastion.ops.models import Heartbeat


@pytest.fixture
def dead_broker():
    saved = app.conf.broker_url
    # Nothing listens on port 1: the connection is refused at once.
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    yield
    app.conf.broker_url = saved


def test_ready_when_database_and_broker_answer(client, db):
    answer = client.get("/ready")

    body = answer.json()
    assert answer.status_code == 200
    assert body["ready"] is True
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_not_ready_when_the_broker_is_unreachable(client, db, dead_broker):
    answer = client.get("/ready")

    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"]["ok"] is False
    assert answer.json()["checks"]["database"]["ok"] is True


def test_a_scheduler_that_never_ticked_is_reported_but_keeps_web_ready(client, db):
    answer = client.get("/ready")

    scheduler = answer.json()["checks"]["scheduler"]
    assert answer.status_code == 200
    assert scheduler == {"ok": False, "detail": "no tick recorded yet"}


def test_a_stale_scheduler_tick_is_reported(client, db):
    Heartbeat.objects.create(name="scheduler", at=timezone.now() - timedelta(minutes=10))

    scheduler = client.get("/ready").json()["checks"]["scheduler"]

    assert scheduler["ok"] is False
    assert scheduler["detail"].startswith("last tick 6")


def test_a_publish_from_the_scheduler_records_its_tick(client, db, monkeypatch):
    monkeypatch.setitem(signals._state, "in_scheduler", True)
    monkeypatch.setattr(signals, "_last_beat", {})

    app.send_task("bastion.threats.tasks.sweep_pending_actions")

    beat = Heartbeat.objects.get(name="scheduler")
    assert timezone.now() - beat.at < timedelta(seconds=5)
    assert client.get("/ready").json()["checks"]["scheduler"]["ok"] is True


def test_a_publish_from_a_web_process_is_no_tick(db, monkeypatch):
    monkeypatch.setattr(signals, "_last_beat", {})

    app.send_task("bastion.threats.tasks.sweep_pending_actions")

    assert not Heartbeat.objects.filter(name="scheduler").exists()


def test_ready_refuses_other_methods(client, db):
    assert client.post("/ready").status_code == 405
