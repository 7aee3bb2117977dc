"""A worker process's life around its tasks.

- Each task runs with the request id of the request that created its job (a message
  header), so every log line of the job carries it.
- When told to stop (SIGTERM: Celery's warm shutdown) it keeps running its jobs for up to
  WORKER_SHUTDOWN_GRACE_SECONDS; whatever is still running then goes back to the queue at
  once (jobs_hand_back) and the process stops with a cold shutdown, instead of holding jobs
  until a supervisor kills it and they wait out a lease."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery import Task
from celery.signals import task_postrun, task_prerun, worker_shutting_down
from django.conf import settings

from apps.jobs.services import jobs_hand_back
from banatie.request_context import reset_request_id, set_request_id

logger = logging.getLogger(__name__)


def _hand_back_then_stop() -> None:
    if jobs_hand_back():
        # Celery's cold shutdown: stop now, the handed-back jobs run elsewhere.
        os.kill(os.getpid(), signal.SIGQUIT)


@worker_shutting_down.connect
def _on_worker_shutting_down(sig: str = "", how: str = "", **_: Any) -> None:
    if how != "Warm":
        return
    timer = threading.Timer(settings.WORKER_SHUTDOWN_GRACE_SECONDS, _hand_back_then_stop)
    timer.daemon = True  # a worker whose jobs all finished exits without waiting for it
    timer.start()


_tokens: dict[str, object] = {}  # task id -> the request-id token to reset after it


@task_prerun.connect
def _task_request_id(task_id: str = "", task: Task | None = None, **_: Any) -> None:
    request_id = None
    if task is not None:  # custom message headers reach the task's request context
        request_id = task.request.get("request_id") or (getattr(task.request, "headers", None) or {}).get("request_id")
    _tokens[task_id] = set_request_id(request_id or "-")


@task_postrun.connect
def _task_request_id_done(task_id: str = "", **_: Any) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        reset_request_id(token)  # type: ignore[arg-type]
