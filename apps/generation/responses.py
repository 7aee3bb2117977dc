"""How a job becomes an HTTP answer: wait (sync) or 202 (async / wait ran out), then
render the documented body for the job's kind, or its error."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.generation.errors import job_error
from apps.generation.models import Job
from apps.generation.services import job_idempotent_replay_exists, job_wait
from apps.keys.throttling import KeyRateThrottle, RateLimitHeadersMixin
from banatie.errors import ApiError
from banatie.timefmt import iso as _iso


def job_status_url(job: Job) -> str:
    return f"/api/jobs/{job.id}"


def preferences(request: Request) -> dict[str, str]:
    """RFC 7240 Prefer header → {name: value}; parameters after ';' are ignored."""
    prefs: dict[str, str] = {}
    for item in request.headers.get("Prefer", "").split(","):
        head = item.split(";", 1)[0].strip()
        if head:
            name, _, value = head.partition("=")
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


def sync_wait_seconds(prefs: dict[str, str]) -> tuple[float, bool]:
    """SYNC_WAIT_SECONDS, or less when the client asked for `Prefer: wait=N`."""
    try:
        asked = float(prefs["wait"])
    except (KeyError, ValueError):
        return settings.SYNC_WAIT_SECONDS, False
    return max(0.0, min(asked, settings.SYNC_WAIT_SECONDS)), True


def job_failure(job: Job) -> ApiError:
    err = job_error(job.error_code, job.error_message, job.error_details, job.retry_after)
    err.extra["jobId"] = str(job.id)
    return err


def job_accepted(job: Job, *, preference_applied: str | None) -> Response:
    response = Response(
        {
            "success": True,
            "message": "Job accepted; poll statusUrl for the result.",
            "jobId": str(job.id),
            "status": job.status,
            "statusUrl": job_status_url(job),
        },
        status=status.HTTP_202_ACCEPTED,
    )
    response["Location"] = job_status_url(job)
    if preference_applied:
        response["Preference-Applied"] = preference_applied
    return response


def result_data(job: Job, request: Request) -> dict[str, Any]:
    """What a finished job produced, as the documented response shows it."""
    result = dict(job.result or {})
    if job.kind == Job.Kind.ENHANCEMENT:
        return result
    key = result["storageKey"]
    data = {
        "filename": result["filename"],
        "filepath": key,
        "url": request.build_absolute_uri(f"/api/images/{key}"),
        "description": result["description"],
        "model": result["model"],
        "generatedAt": result["generatedAt"],
        "jobId": str(job.id),
        "provider": result["provider"],
        "width": result["width"],
        "height": result["height"],
        "contentType": result["contentType"],
    }
    if result.get("promptEnhancement"):
        data["promptEnhancement"] = result["promptEnhancement"]
    return data


def sync_body(job: Job, request: Request) -> dict[str, Any]:
    """The documented synchronous 200 body for the job's endpoint, plus jobId."""
    if job.kind == Job.Kind.ENHANCEMENT:
        return {"success": True, **result_data(job, request), "jobId": str(job.id)}
    return {"success": True, "message": "Image generated successfully", "data": result_data(job, request)}


def respond_with_job(request: Request, job: Job) -> Response:
    """Sync by default: wait up to SYNC_WAIT_SECONDS, then 200 with the documented body or
    the job's error. ``Prefer: respond-async``, or a wait that runs out: 202 with the job."""
    replayed = getattr(job, "replayed", False)
    if replayed:
        request._request.idempotent_replay = True  # for the response header
    if job.status == Job.Status.FAILED and job.error_code == "queue_unavailable" and not replayed:
        raise job_failure(job)
    prefs = preferences(request)
    if "respond-async" in prefs:
        return job_accepted(job, preference_applied="respond-async")
    timeout, wait_asked = sync_wait_seconds(prefs)
    job = job_wait(job=job, timeout=timeout)
    if job.status == Job.Status.SUCCEEDED:
        return Response(sync_body(job, request))
    if job.status == Job.Status.FAILED:
        raise job_failure(job)
    return job_accepted(job, preference_applied=f"wait={prefs['wait']}" if wait_asked else None)


def job_detail(job: Job, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": job.status != Job.Status.FAILED,
        "jobId": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "createdAt": _iso(job.created_at),
        "startedAt": _iso(job.started_at),
        "finishedAt": _iso(job.finished_at),
        "statusUrl": job_status_url(job),
    }
    if job.status == Job.Status.SUCCEEDED:
        body["data"] = result_data(job, request)
    elif job.status == Job.Status.FAILED:
        err = job_failure(job)
        body["error"] = {
            "code": err.code, "status": err.status_code, "error": err.error, "message": err.message,
            **({"details": err.details} if err.details else {}),
            **({"retryAfter": int(err.headers["Retry-After"])} if "Retry-After" in err.headers else {}),
        }
    return body


class JobEndpointMixin(RateLimitHeadersMixin):
    """What every job-creating endpoint shares: the per-key limit (an idempotent replay is
    not charged twice) and the Idempotent-Replayed header."""

    throttle_classes = [KeyRateThrottle]

    def counts_against_limit(self, request: Request) -> bool:
        key = request.headers.get("Idempotency-Key")
        return not (key and job_idempotent_replay_exists(key=request.auth, idempotency_key=key))

    def finalize_response(self, request, response, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(getattr(request, "_request", request), "idempotent_replay", False):
            response["Idempotent-Replayed"] = "true"
        return response
