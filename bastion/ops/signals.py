"""Celery hooks: the scheduler's tick and workers' liveness as heartbeat rows, and the run
id (the task id) on every log line a task writes."""

import logging
import time

from celery import signals as celery_signals
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from bastion.ops import context

log = logging.getLogger(__name__)

# Heartbeats are throttled per process: a busy worker must not write a row per task.
BEAT_EVERY_SECONDS = 10.0

_state = {"in_scheduler": False}
_last_beat: dict[str, float] = {}


def connect() -> None:
    celery_signals.beat_init.connect(_scheduler_started, weak=False)
    celery_signals.before_task_publish.connect(_published, weak=False)
    celery_signals.task_prerun.connect(_task_started, weak=False)
    celery_signals.task_postrun.connect(_task_finished, weak=False)


def beat(name: str, force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - _last_beat.get(name, -BEAT_EVERY_SECONDS) < BEAT_EVERY_SECONDS:
        return
    _last_beat[name] = now

    from bastion.ops.models import Heartbeat

    try:
        if not Heartbeat.objects.filter(name=name).update(at=timezone.now()):
            with transaction.atomic():
                Heartbeat.objects.create(name=name, at=timezone.now())
    except IntegrityError:
        Heartbeat.objects.filter(name=name).update(at=timezone.now())
    except DatabaseError as error:
        # A heartbeat is worth less than the work itself: never fail the task or the tick.
        log.warning("heartbeat not recorded name=%s error=%s", name, type(error).__name__)


def _scheduler_started(sender=None, **_):
    _state["in_scheduler"] = True


def _published(sender=None, **_):
    # In the scheduler every publish is a tick; elsewhere publishing says nothing.
    if _state["in_scheduler"]:
        beat("scheduler")


def _task_started(task_id=None, task=None, **_):
    context.run_id.set(task_id or "")


def _task_finished(**_):
    beat("worker")
    context.run_id.set("")
