"""Job kinds: what a feature app tells the core about the jobs it creates. The core runs,
finishes and renders a job through its kind, so a new kind needs no edit here.

A feature app registers its kinds from its AppConfig.ready()."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.serializers import Serializer

    from apps.jobs.models import Job


def _nothing(_: dict[str, Any] | None) -> None:
    return None


@dataclass(frozen=True)
class JobKind:
    name: str
    # In the worker: the job's result (JSON), or a JobError. Runs inside the job's deadline.
    run: Callable[[Job], dict[str, Any]]
    # The `data` of GET /api/jobs/{id} once the job succeeded.
    data: Callable[[Job, Request], dict[str, Any]]
    # The 200 body of the endpoint that created the job, once it succeeded.
    sync_body: Callable[[Job, Request], dict[str, Any]]
    # Drop what the job's request stored (uploads) once the job has ended, or when a
    # duplicate request lost the race to create it.
    release_request: Callable[[dict[str, Any]], None] = _nothing
    # Drop what a result stored when the attempt that made it lost its lease.
    discard_result: Callable[[dict[str, Any] | None], None] = _nothing
    # The serializer that renders `data`, for the OpenAPI schema: GET /api/jobs/{id} is one
    # variant per kind, discriminated by `kind`, so generated clients get typed results.
    data_schema: type[Serializer] | None = None
    # The Gemini model the job's first upstream call goes to, or None when it makes none
    # (the offline provider). Jobs of a kind that says wait for an upstream slot
    # (apps.jobs.pacing) while still queued.
    upstream_model: Callable[[Job], str | None] | None = None
    # How many images a succeeded job's result holds (the `images` of its usage).
    images: Callable[[dict[str, Any]], int] = lambda _result: 0
    # How many images a job of this request asks for (what quotas count while it runs).
    images_asked: Callable[[dict[str, Any]], int] = lambda _request: 0


_KINDS: dict[str, JobKind] = {}


def kind_register(kind: JobKind) -> None:
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise RuntimeError(f"job kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind


def kind_get(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} is registered (is its app in INSTALLED_APPS?)") from None


def kind_names() -> list[str]:
    return sorted(_KINDS)
