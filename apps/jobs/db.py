"""This thread's (greenlet's) database connection around the long waits of a job (an
upstream call, a sync request's wait, the heartbeat's sleep)."""
from __future__ import annotations

from django.db import connection


def connection_release() -> None:
    """Hand this thread's connection back to its pool (psycopg's for PostgreSQL,
    banatie.sqlite_pool for SQLite), so a bounded number of connections serves any number
    of waits."""
    if not connection.in_atomic_block:
        connection.close()
