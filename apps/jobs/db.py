"""This thread's database connection around the long waits of a job (an upstream call, a
sync request's wait, the heartbeat's sleep)."""
from __future__ import annotations

from django.db import connection


def connection_release() -> None:
    """Hand this thread's connection back to the pool, so DATABASE_POOL_SIZE connections
    serve any number of waits. SQLite has no server side; its per-thread connection is kept
    (reopening and its PRAGMAs cost more than the queries)."""
    if connection.vendor != "sqlite" and not connection.in_atomic_block:
        connection.close()
