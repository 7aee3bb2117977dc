from __future__ import annotations

from django.db.models import QuerySet

from apps.keys.errors import KeyNotFound
from apps.keys.models import ApiKey
from banatie.lookups import get_by_uuid


def key_list() -> QuerySet[ApiKey]:
    """All keys (master keys administer the whole installation)."""
    return ApiKey.objects.order_by("created_at")


def key_get(*, key_id: str) -> ApiKey:
    """A malformed id is the same 404 as an unknown one."""
    return get_by_uuid(ApiKey.objects.all(), key_id, not_found=KeyNotFound)


def project_ids_with_keys() -> list[str]:
    """Every project that has (or had) a key, sorted."""
    return sorted(ApiKey.objects.exclude(project_id=None).values_list("project_id", flat=True).distinct())
