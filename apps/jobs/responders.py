"""How a created job becomes the HTTP answer of the endpoint that created it: wait (sync)
or 202 (async, or the wait ran out), then the kind's 200 body or the job's error."""
from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs.errors import JobError, QueueUnavailable
from apps.jobs.kinds import kind_get
from apps.jobs.models import Job
from apps.jobs.prefer import preferences
from apps.jobs.serializers import JobAcceptedOutputSerializer
from apps.jobs.services import JobCreated, job_wait_counted

REPLAYED = {"Idempotent-Replayed": "true"}


def respond_with_job(request: Request, created: JobCreated) -> Response:
    """Sync by default: wait up to SYNC_WAIT_SECONDS (or `Prefer: wait=N`), then 200 with
    the kind's body or the job's error. `Prefer: respond-async`, or a wait that runs out:
    202 with the job. Every answer to a replay carries Idempotent-Replayed: true."""
    job, extra = created.job, (REPLAYED if created.replayed else {})
    if job.status == Job.Status.FAILED and job.error_code == QueueUnavailable.code and not created.replayed:
        raise _failure(job, extra)
    prefs = preferences(request)
    if prefs.respond_async:
        return _accepted(job, extra, applied="respond-async")
    job = job_wait_counted(job=job, timeout=prefs.wait)
    if job.status == Job.Status.SUCCEEDED:
        return Response(kind_get(job.kind).sync_body(job, request), headers=extra)
    if job.status in (Job.Status.FAILED, Job.Status.CANCELED):
        raise _failure(job, extra)  # canceled: 409 job_canceled or deadline_exceeded
    return _accepted(job, extra, applied=f"wait={prefs.wait_asked}" if prefs.wait_asked else None)


def _failure(job: Job, extra: dict[str, str]) -> JobError:
    err = JobError.of(job)
    err.headers.update(extra)
    return err


def _accepted(job: Job, extra: dict[str, str], *, applied: str | None) -> Response:
    headers = {"Location": job.status_url, **extra}
    if applied:
        headers["Preference-Applied"] = applied
    return Response(JobAcceptedOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED, headers=headers)
