from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from apps.jobs.cursor import CURSOR_SALT
from apps.jobs.errors import InvalidCursor, JobNotFound
from apps.jobs.models import Job
from apps.keys.models import ApiKey
from apps.keys.selectors import project_scope_resolve
from banatie.cursors import keyset_page
from banatie.lookups import get_by_uuid


def job_get_for_key(*, key: ApiKey, job_id: str) -> Job:
    """A job of the caller's project (master keys have their own scope). Another project's job,
    a malformed id and an unknown id are the same 404, so ids cannot be probed."""
    return get_by_uuid(Job.objects.filter(project_id=key.project_scope), job_id, not_found=JobNotFound)


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None
    has_more: bool


def jobs_list_for_key(
    *,
    key: ApiKey,
    project_id: str | None = None,
    statuses: list[str] | None = None,
    kind: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> JobPage:
    """One page of the caller's jobs, newest first (the scope of job_get_for_key; a master
    key may name a project). Keyset-paginated on (created_at, id), both descending: the
    next page is the rows strictly after this page's last one, so jobs created meanwhile
    (they sort first) never shift a later page, and no row is listed twice or skipped.
    ``created_after`` / ``created_before`` are exclusive. One query (limit + 1 rows: the
    extra row only says whether there is more). Raises MasterKeyRequired for a project key
    naming another project, InvalidCursor for a cursor we did not issue."""
    scope = project_scope_resolve(key=key, project_id=project_id, verb="list", noun="jobs") or key.project_scope
    jobs = Job.objects.filter(project_id=scope)
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if kind:
        jobs = jobs.filter(kind=kind)
    if created_after is not None:
        jobs = jobs.filter(created_at__gt=created_after)
    if created_before is not None:
        jobs = jobs.filter(created_at__lt=created_before)
    page = keyset_page(jobs, cursor=cursor, limit=limit, salt=CURSOR_SALT, invalid=InvalidCursor)
    return JobPage(jobs=page.rows, has_more=page.has_more, next_cursor=page.next_cursor)


def job_idempotent_replay_exists(*, key: ApiKey, idempotency_key: str) -> bool:
    """Whether this Idempotency-Key names a live job of this API key (a replay is not
    charged against the rate limit)."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    return Job.objects.filter(api_key=key, idempotency_key=idempotency_key, created_at__gte=cutoff).exists()


def job_queue_position(job: Job) -> int:
    """How many jobs of any project were queued before ``job`` (one indexed count)."""
    earlier = Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk)
    return Job.objects.filter(earlier, status=Job.Status.QUEUED).count()


def jobs_unfinished_counts() -> dict[str, int]:
    """How many jobs are queued and running right now, across all projects: the operator's
    view for /metrics (apps.jobs.metrics), not a caller's, so not scoped. One GROUP BY."""
    counts = {Job.Status.QUEUED.value: 0, Job.Status.RUNNING.value: 0}
    rows = Job.objects.filter(status__in=list(counts)).values_list("status").annotate(n=Count("id"))
    for status, n in rows.order_by():
        counts[status] = n
    return counts
