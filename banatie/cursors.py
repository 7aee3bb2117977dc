"""Keyset pagination, newest first, with a signed opaque cursor: the one implementation of
every listing that pages on (created_at, id): GET /api/jobs and GET
/api/webhooks/{id}/deliveries.

The cursor holds the last row's (created_at, id), signed with django.core.signing under a
salt per listing, so a client cannot forge a position, a cursor of one listing is refused by
another, and one from another installation (another SECRET_KEY) is refused. It is signed,
not encrypted: the client may read its own row's id and creation time in it."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet

from banatie.errors import ApiError

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Page(Generic[M]):
    rows: list[M]
    next_cursor: str | None
    has_more: bool


def cursor_encode(*, salt: str, created_at: datetime, row_id: uuid.UUID) -> str:
    # Microseconds: the page boundary must be the row's exact instant, or ties would blur.
    return signing.dumps({"c": created_at.isoformat(timespec="microseconds"), "i": str(row_id)}, salt=salt)


def cursor_decode(value: str, *, salt: str, invalid: type[ApiError]) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor names; anything we did not issue for this listing
    (bad signature, edited, cut off, another shape) raises ``invalid``."""
    try:
        data = signing.loads(value, salt=salt)
        created_at = datetime.fromisoformat(data["c"])
        row_id = uuid.UUID(data["i"])
    except (signing.BadSignature, ValueError, TypeError, KeyError, AttributeError):
        raise invalid(field="cursor") from None
    if created_at.tzinfo is None:
        raise invalid(field="cursor")
    return created_at, row_id


def keyset_page(queryset: QuerySet[M], *, cursor: str | None, limit: int, salt: str,
                invalid: type[ApiError]) -> Page[M]:
    """One page of ``queryset`` ordered by (created_at, pk), both descending: the rows
    strictly after the cursor's, so rows created meanwhile (they sort first) never shift a
    later page and no row is listed twice or skipped. One query (limit + 1 rows: the extra
    row only says whether there is more)."""
    if cursor:
        created_at, row_id = cursor_decode(cursor, salt=salt, invalid=invalid)
        queryset = queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=row_id))
    rows = list(queryset.order_by("-created_at", "-pk")[:limit + 1])
    page, has_more = rows[:limit], len(rows) > limit
    last = page[-1] if has_more else None
    return Page(rows=page, has_more=has_more,
                next_cursor=cursor_encode(salt=salt, created_at=last.created_at, row_id=last.pk) if last else None)
