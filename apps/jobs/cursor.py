"""The cursor of GET /api/jobs: where the previous page ended, signed so a client cannot
forge a position and a cursor from another installation (another SECRET_KEY) is refused.

It holds the last row's (created_at, id), the keyset the listing is ordered by; it is
signed, not encrypted (the client may read its own job's id and creation time in it)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core import signing

from apps.jobs.errors import InvalidCursor

_SALT = "banatie.jobs.cursor"


@dataclass(frozen=True)
class JobCursor:
    created_at: datetime
    id: uuid.UUID


def cursor_encode(*, created_at: datetime, job_id: uuid.UUID) -> str:
    # Microseconds: the page boundary must be the row's exact instant, or ties would blur.
    return signing.dumps({"c": created_at.isoformat(timespec="microseconds"), "i": str(job_id)}, salt=_SALT)


def cursor_decode(value: str) -> JobCursor:
    """The position a cursor names; anything we did not issue (bad signature, edited,
    cut off, another shape) is InvalidCursor."""
    try:
        data = signing.loads(value, salt=_SALT)
        created_at = datetime.fromisoformat(data["c"])
        job_id = uuid.UUID(data["i"])
    except (signing.BadSignature, ValueError, TypeError, KeyError, AttributeError):
        raise InvalidCursor(field="cursor") from None
    if created_at.tzinfo is None:
        raise InvalidCursor(field="cursor")
    return JobCursor(created_at=created_at, id=job_id)
