"""Django's SQLite backend, made fit for gevent: a small per-process pool of open
connections, and waits for the file's write lock that let other greenlets run.

- Pool: Django keeps a connection per thread, and under gevent every request and every
  task is a new greenlet, so without a pool each would open the file and run the PRAGMAs
  again (more CPU than the request's own queries). Closing a connection (end of request,
  end of task, apps.jobs.db.connection_release) hands it back here; the next greenlet
  takes it. At most SQLITE_POOL_SIZE idle connections are kept; none crosses a fork.
- Lock waits: SQLite's own busy handler sleeps inside the C call, which under gevent
  stops the whole process, every waiting request included, and can deadlock it: a
  greenlet holding the write lock cannot run to release it. So connections are opened
  with no busy timeout, and a statement refused with SQLITE_BUSY is retried here with a
  cooperative sleep, for up to the configured ``timeout`` in all: statements outside a
  transaction (refused, they did nothing; BEGIN IMMEDIATE is one) and COMMIT, which
  SQLite documents as safe to retry.

PostgreSQL uses psycopg's pool (DATABASES OPTIONS["pool"]) instead."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db.backends.sqlite3 import base as sqlite3_base
from django.db.backends.utils import debug_transaction

from banatie.counted_cursor import counted_cursor_class

T = TypeVar("T")
_lock = threading.Lock()
_idle: dict[tuple[int, str], list[Any]] = {}  # (pid, database) -> idle connections


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) if code is not None else "locked" in str(exc)


def retry_busy(call: Callable[[], T], budget: float) -> T:
    """``call()``, again after a short cooperative sleep while SQLite answers busy."""
    deadline = time.monotonic() + budget
    delay = 0.0005
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # gevent's sleep once monkey-patched: other greenlets run
        delay = min(delay * 2, 0.02)


class _Cursor(sqlite3_base.SQLiteCursorWrapper):
    busy_budget = 0.0

    def execute(self, query: str, params: Any = None) -> Any:
        if self.connection.in_transaction:
            return super().execute(query, params)
        return retry_busy(lambda: super(_Cursor, self).execute(query, params), self.busy_budget)

    def executemany(self, query: str, param_list: Any) -> Any:
        if self.connection.in_transaction:
            return super().executemany(query, param_list)
        params = list(param_list)
        return retry_busy(lambda: super(_Cursor, self).executemany(query, params), self.busy_budget)


class DatabaseWrapper(sqlite3_base.DatabaseWrapper):
    busy_budget = 30.0
    _pool_key: tuple[int, str] | None = None  # the pool the open connection goes back to

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        self.busy_budget = float(params.get("timeout", 5.0))
        params["timeout"] = 0  # never wait inside SQLite (see the module docstring)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        # Per process: a connection never crosses a fork.
        self._pool_key = (os.getpid(), str(conn_params["database"]))
        with _lock:
            idle = _idle.get(self._pool_key)
            conn = idle.pop() if idle else None
        if conn is not None:
            return conn
        return retry_busy(lambda: super(DatabaseWrapper, self).get_new_connection(conn_params), self.busy_budget)

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=counted_cursor_class(_Cursor, self.alias, self.vendor))
        cursor.busy_budget = self.busy_budget
        return cursor

    def _commit(self) -> None:
        if self.connection is not None:
            with debug_transaction(self, "COMMIT"), self.wrap_database_errors:
                retry_busy(self.connection.commit, self.busy_budget)

    def _close(self) -> None:
        conn = self.connection
        if conn is None or self.is_in_memory_db():
            return super()._close()
        with self.wrap_database_errors:
            if conn.in_transaction:
                conn.rollback()  # a connection goes back clean, or not at all
        with _lock:
            idle = _idle.setdefault(self._pool_key, [])
            if len(idle) < settings.SQLITE_POOL_SIZE:
                idle.append(conn)
                return None
        return super()._close()
