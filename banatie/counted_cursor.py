"""django-prometheus' query counters and timings (``django_db_execute_total``,
``django_db_query_duration_seconds``) around a backend's cursor class, built once per
(cursor class, database). Its own backends build the wrapping class on every connect or
cursor, and under gevent every request and task connects: a class definition per request
showed in the profile (docs/performance.md, "Metrics on vs off")."""
from __future__ import annotations

import functools

from django_prometheus.db.common import ExportingCursorWrapper


@functools.cache
def counted_cursor_class(cursor_class: type, alias: str, vendor: str) -> type:
    return ExportingCursorWrapper(cursor_class, alias, vendor)
