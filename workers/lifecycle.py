"""A worker process's life around its tasks.

- With LOG_FORMAT=json it prints no start-up banner (not JSON).
- Each task runs with the request id of the request that created its job (a message
  header), so every log line of the job carries it, and a job's task with its job id.
- When told to stop (SIGTERM: Celery's warm shutdown) it keeps running its jobs for up to
  WORKER_SHUTDOWN_GRACE_SECONDS; whatever is still running then goes back to the queue at
  once (jobs_hand_back) and the process stops with a cold shutdown, instead of holding jobs
  until a supervisor kills it and they wait out a lease."""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.signals import celeryd_init, task_postrun, task_prerun, worker_shutting_down
from django.conf import settings

from apps.jobs.services import jobs_hand_back
from apps.jobs.task_names import JOB_RUN
from banatie.logs import json_line
from banatie.tracing import tracing_setup
from banatie.request_context import log_fields_end, log_fields_start, reset_request_id, set_request_id

logger = logging.getLogger(__name__)


def _hand_back_then_stop() -> None:
    """The grace is over and this worker still runs: hand back what it holds, then Celery's
    cold shutdown. Also when nothing runs: a warm shutdown can hang on a broker that went
    away (acks and requeues retrying), and the process must still stop within its grace.
    The cold shutdown can hang the same way (closing the broker connection restores unacked
    messages, retried against the dead broker), so half the margin left before the
    supervisor's SIGKILL later the process exits regardless: everything it held is in the
    database (handed back, queued) or still unacked in the broker."""
    jobs_hand_back()
    os.kill(os.getpid(), signal.SIGQUIT)
    margin = settings.SHUTDOWN_GRACE_SECONDS - settings.WORKER_SHUTDOWN_GRACE_SECONDS
    _call_later(margin / 2, _exit_now)


def _exit_now() -> None:
    logger.error("the cold shutdown did not finish within its margin (the broker is unreachable?); exiting")
    logging.shutdown()
    os._exit(1)


_stopping = threading.Event()


def worker_stopping() -> bool:
    """True once this worker began to shut down: a delivery reaching it now (a message it
    handed back, one in flight when it stopped consuming) belongs to the next worker."""
    return _stopping.is_set()


@worker_shutting_down.connect
def _on_worker_shutting_down(sig: str = "", how: str = "", **_: Any) -> None:
    _stopping.set()
    if how != "Warm":
        return
    _call_later(settings.WORKER_SHUTDOWN_GRACE_SECONDS, _hand_back_then_stop)


def _call_later(seconds: float, function: Callable[[], None]) -> None:
    """Run ``function`` after ``seconds`` without blocking a signal handler: under gevent
    the handler runs in the event loop, which must not wait (for a thread to start)."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        gevent.spawn_later(seconds, function)
        return
    timer = threading.Timer(seconds, function)
    timer.daemon = True  # a worker whose jobs all finished exits without waiting for it
    timer.start()


@celeryd_init.connect
def _tracing(**_: Any) -> None:
    tracing_setup()  # a no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set


@celeryd_init.connect
def _json_only_with_json_logs(instance: Any = None, **_: Any) -> None:
    # With LOG_FORMAT=json every line a process writes must be one JSON object. Celery prints
    # a start-up banner (off: its "ready" line is still logged) and, from its signal
    # handlers, shutdown announcements through safe_say (an unpatched os.write, safe in a
    # handler): those are kept, as JSON lines written the same way.
    if settings.LOG_FORMAT != "json" or instance is None:
        return
    instance.quiet = True
    from celery.apps import worker as celery_worker

    say = celery_worker.safe_say

    def say_json(msg: str, f: Any = None) -> None:
        line = json_line(level="WARNING", logger="celery.apps.worker", message=str(msg).strip())
        say(line, f) if f is not None else say(line)

    celery_worker.safe_say = say_json


# The context tokens to reset after a task live on its request: two deliveries of one job
# (same task id) may overlap in one process after a republish.
_TOKENS = "banatie_log_tokens"


@task_prerun.connect
def _task_request_id(task_id: str = "", task: Task | None = None, **_: Any) -> None:
    def header(name: str) -> str:  # custom message headers reach the task's request context
        if task is None:
            return ""
        return str(task.request.get(name) or (getattr(task.request, "headers", None) or {}).get(name) or "")

    context: dict[str, str] = {}
    if task is not None and task.name == JOB_RUN:  # a job's task id is its job id (apps.jobs.services._publish)
        context = {"job_id": task_id, "key_prefix": header("key_prefix"), "project_id": header("project_id")}
    tokens = (set_request_id(header("request_id") or "-"), log_fields_start(**context))
    if task is not None:
        setattr(task.request, _TOKENS, tokens)


@task_postrun.connect
def _task_request_id_done(task: Task | None = None, **_: Any) -> None:
    tokens = getattr(task.request, _TOKENS, None) if task is not None else None
    if tokens is not None:
        setattr(task.request, _TOKENS, None)
        request_token, fields_token = tokens
        log_fields_end(fields_token)  # type: ignore[arg-type]
        reset_request_id(request_token)  # type: ignore[arg-type]
