"""Redis clients for short commands (a PUBLISH, a pacing script): one bounded pool per
process, shared by every user, so a thousand greenlets cost at most REDIS_SHORT_POOL_SIZE
connections (they queue for one instead of opening their own)."""
from __future__ import annotations

import functools

import redis
from django.conf import settings

_POOL_SIZE = 16


@functools.lru_cache(maxsize=4)
def _client(url: str, timeout: float) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=_POOL_SIZE, timeout=timeout, socket_timeout=timeout, socket_connect_timeout=timeout,
    )
    return redis.Redis(connection_pool=pool)


def short_commands_client() -> redis.Redis:
    """This process's client for commands that answer at once (never for blocking reads)."""
    return _client(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)
