"""The jobs this worker process is running, kept alive by a heartbeat: every
JOB_HEARTBEAT_SECONDS one UPDATE renews their leases to JOB_LEASE_SECONDS from now. A
worker that dies stops renewing, so its jobs can be reclaimed a lease later (seconds, not
the job's whole time limit), while a slow but alive job is never taken from it. A job the
beat finds no longer running as this attempt (canceled, or taken over) has its ``wake``
Event set, so its worker stops waiting on it even if the cancel signal was missed."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from apps.jobs.db import connection_release
from apps.jobs.models import Job

logger = logging.getLogger(__name__)

_running: dict[str, tuple[int, threading.Event]] = {}  # job id -> (this process's attempt, its wake)
_lock = threading.Lock()
_beating: threading.Thread | None = None


@contextmanager
def job_running(job: Job, wake: threading.Event) -> Iterator[None]:
    """Keep ``job``'s lease alive while the block runs (this attempt only); set ``wake``
    if a beat finds the job no longer this attempt's."""
    _start_heartbeat()
    with _lock:
        _running[str(job.pk)] = (job.attempts, wake)
    try:
        yield
    finally:
        with _lock:
            held = _running.get(str(job.pk))
            if held is not None and held[0] == job.attempts:
                del _running[str(job.pk)]


def running_jobs_take() -> dict[str, int]:
    """Stop renewing every running job's lease and return them (id -> attempt): the
    process is handing them back."""
    with _lock:
        taken = {job_id: attempt for job_id, (attempt, _) in _running.items()}
        _running.clear()
    return taken


def leases_renew() -> int:
    """Renew the leases of this process's running jobs (one UPDATE); returns how many."""
    with _lock:
        running = dict(_running)
    if not running:
        return 0
    owned = Job.objects.filter(
        reduce(or_, (Q(pk=job_id, attempts=attempt) for job_id, (attempt, _) in running.items())),
        status=Job.Status.RUNNING,
    )
    expires = timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    renewed = owned.update(lease_expires_at=expires)
    if renewed < len(running):  # some ended under us: canceled, or taken over
        still = {str(pk) for pk in owned.values_list("pk", flat=True)}
        for job_id, (_, wake) in running.items():
            if job_id not in still:
                wake.set()
    return renewed


def _beat() -> None:
    while True:
        time.sleep(settings.JOB_HEARTBEAT_SECONDS)
        try:
            leases_renew()
        except DatabaseError as exc:  # the next beat tries again; the lease has slack for it
            logger.warning("lease heartbeat failed: %s", type(exc).__name__)
        except Exception:  # the thread must outlive any one beat, or every lease would lapse
            logger.exception("lease heartbeat crashed; the next beat tries again")
        finally:
            connection_release()  # back to the pool between beats


def _start_heartbeat() -> None:
    global _beating
    with _lock:
        if _beating is None or not _beating.is_alive():
            _beating = threading.Thread(target=_beat, name="banatie-lease-heartbeat", daemon=True)
            _beating.start()
