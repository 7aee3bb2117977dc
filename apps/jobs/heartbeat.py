"""The jobs this worker process is running, kept alive by a heartbeat: every
JOB_HEARTBEAT_SECONDS one UPDATE renews their leases to JOB_LEASE_SECONDS from now. A
worker that dies stops renewing, so its jobs can be reclaimed a lease later (seconds, not
the job's whole time limit), while a slow but alive job is never taken from it."""
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

_running: dict[str, int] = {}  # job id -> the attempt this process runs
_lock = threading.Lock()
_beating: threading.Thread | None = None


@contextmanager
def job_running(job: Job) -> Iterator[None]:
    """Keep ``job``'s lease alive while the block runs (this attempt only)."""
    _start_heartbeat()
    with _lock:
        _running[str(job.pk)] = job.attempts
    try:
        yield
    finally:
        with _lock:
            if _running.get(str(job.pk)) == job.attempts:
                del _running[str(job.pk)]


def running_jobs_take() -> dict[str, int]:
    """Stop renewing every running job's lease and return them (id -> attempt): the
    process is handing them back."""
    with _lock:
        taken = dict(_running)
        _running.clear()
    return taken


def leases_renew() -> int:
    """Renew the leases of this process's running jobs (one UPDATE); returns how many."""
    with _lock:
        running = dict(_running)
    if not running:
        return 0
    owned = reduce(or_, (Q(pk=job_id, attempts=attempt) for job_id, attempt in running.items()))
    expires = timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return Job.objects.filter(owned, status=Job.Status.RUNNING).update(lease_expires_at=expires)


def _beat() -> None:
    while True:
        time.sleep(settings.JOB_HEARTBEAT_SECONDS)
        try:
            leases_renew()
        except DatabaseError as exc:  # the next beat tries again; the lease has slack for it
            logger.warning("lease heartbeat failed: %s", type(exc).__name__)
        finally:
            connection_release()  # back to the pool between beats


def _start_heartbeat() -> None:
    global _beating
    with _lock:
        if _beating is None or not _beating.is_alive():
            _beating = threading.Thread(target=_beat, name="banatie-lease-heartbeat", daemon=True)
            _beating.start()
