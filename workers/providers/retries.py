"""Retrying an upstream call inside a job: retryable failures (JobError.retryable) are
tried again with exponential backoff and jitter, honouring the upstream's Retry-After
(capped), at most UPSTREAM_MAX_ATTEMPTS calls in all and never past the job's deadline."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from apps.jobs.deadline import time_left
from apps.jobs.errors import JobError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def with_upstream_retries(call: Callable[[], T]) -> T:
    attempts = settings.UPSTREAM_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except JobError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            backoff = settings.UPSTREAM_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
            delay = max(backoff, exc.retry_after or 0) * random.uniform(1.0, 1.25)
            delay = min(delay, settings.UPSTREAM_RETRY_MAX_SECONDS)
            left = time_left()
            if left is not None and left <= delay:
                raise  # no time for another attempt: report the upstream error as it is
            logger.warning("upstream %s (attempt %d/%d); retrying in %.2fs", exc.code, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
