"""One wire format for instants: ISO 8601 in UTC with milliseconds and a Z, as the API
reference shows ("2025-09-30T17:08:02.553Z")."""
from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None
