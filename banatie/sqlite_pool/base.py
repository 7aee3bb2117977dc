"""Django's SQLite backend with a small per-process pool of open connections.

Django keeps a connection per thread, and under gevent every request and every task is a
new greenlet: without a pool each of them would open the file and run the PRAGMAs again
(more CPU than the request's own queries). Closing a connection (end of request, end of
task, apps.jobs.db.connection_release) hands it back here instead; the next greenlet
takes it. At most SQLITE_POOL_SIZE idle connections are kept; none crosses a fork.
PostgreSQL uses psycopg's pool (DATABASES OPTIONS["pool"]) instead."""
from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.db.backends.sqlite3 import base as sqlite3_base

_lock = threading.Lock()
_idle: dict[tuple[int, str], list[Any]] = {}  # (pid, database) -> idle connections


class DatabaseWrapper(sqlite3_base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        with _lock:
            idle = _idle.get(self._pool_key(conn_params))
            conn = idle.pop() if idle else None
        return conn if conn is not None else super().get_new_connection(conn_params)

    def _close(self) -> None:
        conn = self.connection
        if conn is None or self.is_in_memory_db():
            return super()._close()
        with self.wrap_database_errors:
            if conn.in_transaction:
                conn.rollback()  # a connection goes back clean, or not at all
        key = self._pool_key(self.get_connection_params())
        with _lock:
            idle = _idle.setdefault(key, [])
            if len(idle) < settings.SQLITE_POOL_SIZE:
                idle.append(conn)
                return None
        return super()._close()

    @staticmethod
    def _pool_key(conn_params: dict[str, Any]) -> tuple[int, str]:
        return os.getpid(), str(conn_params["database"])
