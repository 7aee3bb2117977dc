from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.keys.errors import KeyNotFound
from apps.keys.models import ApiKey


def key_list() -> QuerySet[ApiKey]:
    """All keys (master keys administer the whole installation)."""
    return ApiKey.objects.order_by("created_at")


def key_get(*, key_id: str) -> ApiKey:
    """A malformed id is the same 404 as an unknown one."""
    try:
        pk = uuid.UUID(str(key_id))
    except ValueError:
        raise KeyNotFound() from None
    key = ApiKey.objects.filter(pk=pk).first()
    if key is None:
        raise KeyNotFound()
    return key
