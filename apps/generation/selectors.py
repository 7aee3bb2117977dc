from __future__ import annotations

import uuid

from apps.generation.errors import JobNotFound
from apps.generation.models import Job
from apps.keys.models import ApiKey


def job_get_for_key(*, key: ApiKey, job_id: str) -> Job:
    """A job of the caller's project (master keys have their own scope). Another project's job,
    a malformed id and an unknown id are the same 404, so ids cannot be probed."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        raise JobNotFound() from None
    job = Job.objects.filter(project_id=key.project_scope, pk=pk).first()
    if job is None:
        raise JobNotFound()
    return job
