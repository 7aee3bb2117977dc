"""The running job's deadline, readable by every upstream call the job makes (the
providers cut their timeouts to it). The job enforces its own rather than rely on Celery's
limits, which a threads pool (the tests' in-process worker) ignores and which would kill a
call instead of letting it end with a clear error.

A job that was abandoned (canceled, or past its Cancel-After) has no time left at all, so
work still running for it starts no further upstream call (apps.jobs.abandon)."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# (monotonic deadline, the job's "abandoned" flag); set by job_run for the work of the job.
_deadline: ContextVar[tuple[float, threading.Event | None] | None] = ContextVar("job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float, *, abandoned: threading.Event | None = None) -> Iterator[None]:
    """Bound every upstream call made inside the block to ``seconds`` in all, and to
    nothing once ``abandoned`` is set."""
    token = _deadline.set((time.monotonic() + seconds, abandoned))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds until the job's deadline (0 once the job was abandoned), or None outside a job."""
    state = _deadline.get()
    if state is None:
        return None
    deadline, abandoned = state
    if abandoned is not None and abandoned.is_set():
        return 0.0
    return deadline - time.monotonic()
