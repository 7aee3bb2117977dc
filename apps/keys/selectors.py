from __future__ import annotations

from django.db.models import QuerySet

from apps.keys.errors import KeyNotFound, MasterKeyRequired
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


def project_scope_resolve(*, key: ApiKey, project_id: str | None, verb: str, noun: str) -> str | None:
    """The project a request names (``projectId``), checked against the caller: a master key
    may name any project (None when it names none: the caller decides what that means), a
    project key only its own (which it also gets when it names none). Otherwise raises
    MasterKeyRequired, worded "Only a master key may {verb} another project's {noun}"."""
    if key.is_master:
        return project_id or None
    if project_id and project_id != key.project_scope:
        raise MasterKeyRequired(
            f"Only a master key may {verb} another project's {noun}; this key belongs to project {key.project_id!r}.",
            hint=f"Leave projectId out (or pass your own project's id) to {verb} your project's {noun}.",
        )
    return key.project_scope
