from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.jobs.errors import JobNotFound
from apps.jobs.models import Job
from apps.keys.models import ApiKey
from banatie.lookups import get_by_uuid


def job_get_for_key(*, key: ApiKey, job_id: str) -> Job:
    """A job of the caller's project (master keys have their own scope). Another project's job,
    a malformed id and an unknown id are the same 404, so ids cannot be probed."""
    return get_by_uuid(Job.objects.filter(project_id=key.project_scope), job_id, not_found=JobNotFound)


def job_idempotent_replay_exists(*, key: ApiKey, idempotency_key: str) -> bool:
    """Whether this Idempotency-Key names a live job of this API key (a replay is not
    charged against the rate limit)."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    return Job.objects.filter(api_key=key, idempotency_key=idempotency_key, created_at__gte=cutoff).exists()


def job_queue_position(job: Job) -> int:
    """How many jobs of any project were queued before ``job`` (one indexed count)."""
    earlier = Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk)
    return Job.objects.filter(earlier, status=Job.Status.QUEUED).count()
