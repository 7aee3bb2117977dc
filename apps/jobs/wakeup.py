"""The "job finished" signal: the worker LPUSHes a token to job:{id}:done; a waiting
request BLPOPs it. A list (not pub/sub) so a signal sent before the waiter arrived is not
lost; the waiter pushes the token back so a second waiter on the same job wakes too."""
from __future__ import annotations

import functools
import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

SIGNAL_TTL_SECONDS = 3600


def _key(job_id: str) -> str:
    return f"banatie:job:{job_id}:done"


@functools.lru_cache(maxsize=8)
def _client(url: str, read_timeout: float | None) -> redis.Redis:
    # One pool per (url, timeout): blocking waits need a read timeout above the wait.
    return redis.Redis.from_url(
        url, socket_timeout=read_timeout, socket_connect_timeout=settings.REDIS_TIMEOUT_SECONDS,
        max_connections=1000, health_check_interval=30,
    )


def _push_token(client: redis.Redis, job_id: str) -> None:
    with client.pipeline() as pipe:
        pipe.lpush(_key(job_id), "1").expire(_key(job_id), SIGNAL_TTL_SECONDS).execute()


def signal_job_done(job_id: str) -> None:
    """Best effort: if Redis is down, waiters time out into a 202 and the row has the truth."""
    try:
        _push_token(_client(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS), job_id)
    except redis.RedisError as exc:
        logger.warning("could not signal job %s done: %s", job_id, type(exc).__name__)


def wait_job_done(job_id: str, timeout: float) -> bool:
    """Block up to ``timeout`` seconds for the job's signal. False on timeout or when Redis
    is unreachable (the caller then answers 202 with the job)."""
    if timeout <= 0:
        return False
    # One pool for every wait: its read timeout covers the longest wait allowed (Prefer:
    # wait=N only shortens it), instead of a pool per distinct timeout.
    client = _client(settings.REDIS_URL, settings.SYNC_WAIT_SECONDS + settings.REDIS_TIMEOUT_SECONDS + 1)
    try:
        popped = client.blpop([_key(job_id)], timeout=timeout)
        if popped:
            _push_token(client, job_id)  # put it back for other waiters of the same job
        return bool(popped)
    except redis.RedisError as exc:
        logger.warning("waiting for job %s failed: %s", job_id, type(exc).__name__)
        return False
