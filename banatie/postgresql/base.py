"""Django's PostgreSQL backend with django-prometheus' connection and query metrics, its
counted cursor class built once (banatie/counted_cursor.py) instead of on every connect."""
from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from django_prometheus.db.backends.postgresql import base as counted

from banatie.counted_cursor import counted_cursor_class


class DatabaseWrapper(counted.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = base.DatabaseWrapper.get_connection_params(self)  # not django-prometheus' own wrapping
        params["cursor_factory"] = counted_cursor_class(params["cursor_factory"], self.alias, self.vendor)
        return params
