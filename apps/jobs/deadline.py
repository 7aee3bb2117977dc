"""The running job's deadline, readable by every upstream call the job makes (the
providers cut their timeouts to it). The job enforces its own rather than rely on Celery's
limits, which a threads pool (the tests' in-process worker) ignores and which would kill a
call instead of letting it end with a clear error."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Monotonic seconds; set by job_run for the thread (or task) running the job.
_deadline: ContextVar[float | None] = ContextVar("job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float) -> Iterator[None]:
    """Bound every upstream call made inside the block to ``seconds`` in all."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds until the job's deadline, or None outside a job."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
