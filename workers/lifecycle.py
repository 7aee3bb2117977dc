"""What a worker process does when it is told to stop (SIGTERM: Celery's warm shutdown).
It keeps running its jobs for up to WORKER_SHUTDOWN_GRACE_SECONDS; whatever is still
running then goes back to the queue at once (jobs_hand_back) and the process stops with a
cold shutdown, instead of holding jobs until a supervisor kills it and they wait out a lease."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery.signals import worker_shutting_down
from django.conf import settings

from apps.jobs.services import jobs_hand_back

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
