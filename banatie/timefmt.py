"""One wire format for instants: ISO 8601 in UTC with a Z, milliseconds by default as the
API reference shows ("2025-09-30T17:08:02.553Z"); whole seconds where a value has none
(rate-limit windows)."""
from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None, *, timespec: str = "milliseconds") -> str | None:
    return value.isoformat(timespec=timespec).replace("+00:00", "Z") if value else None
