"""Fetching a row by a public UUID id: a malformed id is the same "not found" as an
unknown one, so ids cannot be probed and no parse error leaks."""
from __future__ import annotations

import uuid
from typing import TypeVar

from django.db.models import Model, QuerySet

from banatie.errors import ApiError

M = TypeVar("M", bound=Model)


def get_by_uuid(queryset: QuerySet[M], value: str, *, not_found: type[ApiError]) -> M:
    try:
        pk = uuid.UUID(str(value))
    except ValueError:
        raise not_found() from None
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise not_found()
    return row
