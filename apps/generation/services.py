"""Job use cases: create (and enqueue after commit), run (claim, execute, finish), wait.

Guarantees:
- job_create: the row exists before the task is published (on_commit); a broker outage
  marks the job failed with queue_unavailable instead of leaving it queued forever.
- job_run: safe to run twice, concurrently or in sequence: the conditional claim lets one
  delivery work while the lease is fresh, and a finished job is never run again.
- job_wait: never raises for slowness or a Redis outage; it returns the row as it is.
"""
from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from apps.generation.errors import ReferenceImageInvalid, ReferenceImageTooLarge
from apps.generation.idempotency import Idempotency, IdempotencyKeyReused
from apps.generation.models import Job
from apps.generation.signals import signal_job_done, wait_job_done
from apps.generation.storage import (
    image_save,
    reference_save,
    storage_delete,
    storage_read,
)
from apps.keys.models import ApiKey
from apps.prompts.services import prompt_enhance, prompt_enhance_result
from banatie.timefmt import iso
from workers.images import (
    ALLOWED_FORMATS,
    EXTENSIONS,
    ImageInfo,
    ImageRejected,
    inspect_image,
)
from workers.providers import get_image_provider
from workers.providers.base import (
    ProviderError,
    ReferenceImage,
    job_deadline,
    time_left,
)

logger = logging.getLogger(__name__)


def job_create(
    *, key: ApiKey, kind: str, request: dict[str, Any], idempotency: Idempotency | None = None
) -> Job:
    """Save a queued job and publish its task once the row is committed.

    With ``idempotency``: the same key from the same API key within IDEMPOTENCY_TTL_HOURS
    returns the original job (``job.replayed`` is True) instead of creating one; the same
    key with another body raises IdempotencyKeyReused. Concurrent duplicates collide on
    a unique constraint, so exactly one job is created."""
    if idempotency is not None:
        existing = job_find_idempotent(key=key, idempotency=idempotency)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            job = Job.objects.create(
                api_key=key, project_id=key.project_scope, kind=kind, request=request,
                enqueued_at=timezone.now(),
                idempotency_key=idempotency.key if idempotency else None,
                request_hash=idempotency.fingerprint if idempotency else "",
            )
            transaction.on_commit(lambda: job_enqueue(job=job))
    except IntegrityError:
        if idempotency is None:
            raise
        existing = job_find_idempotent(key=key, idempotency=idempotency)
        if existing is None:
            raise
        return existing
    job.replayed = False
    return job


def job_find_idempotent(*, key: ApiKey, idempotency: Idempotency) -> Job | None:
    """The live job this Idempotency-Key already names, if any. An expired key is freed."""
    job = Job.objects.filter(api_key=key, idempotency_key=idempotency.key).first()
    if job is None:
        return None
    if job.created_at < timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS):
        Job.objects.filter(pk=job.pk).update(idempotency_key=None)
        return None
    if job.request_hash != idempotency.fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {idempotency.key!r} was first used at {job.created_at:%Y-%m-%dT%H:%M:%SZ} "
            f"for a different request (job {job.id}).",
            details={"jobId": str(job.id)},
        )
    job.replayed = True
    return job


def job_idempotent_replay_exists(*, key: ApiKey, idempotency_key: str) -> bool:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    return Job.objects.filter(api_key=key, idempotency_key=idempotency_key, created_at__gte=cutoff).exists()


def _publish(job_id: str) -> None:
    from workers.tasks import run_job

    run_job.apply_async((job_id,), task_id=job_id)


def job_enqueue(*, job: Job) -> None:
    """Publish the job's task (task id = job id). If the broker cannot be reached within a
    few seconds, the job is failed with queue_unavailable so nothing waits on it and the
    client gets a 503 it can retry."""
    try:
        _publish(str(job.id))
    except (KombuOperationalError, RedisError, OSError) as exc:
        logger.error("enqueue of job %s failed: %s", job.id, type(exc).__name__)
        failure = {"error_code": "queue_unavailable", "retry_after": 5,
                   "error_message": "The job queue (Redis) is unreachable; the request was not accepted.",
                   # The client is told to retry: the same Idempotency-Key must then work.
                   "idempotency_key": None}
        if _finish(job, status=Job.Status.FAILED, only_if_status=Job.Status.QUEUED, **failure):
            job.status = Job.Status.FAILED
            for name, value in failure.items():
                setattr(job, name, value)


def job_sweep() -> dict[str, int]:
    """Recover jobs whose message or worker was lost. Safe to run concurrently and
    repeatedly: each re-publish is preceded by a conditional update that only one sweep
    can win, so nothing is published twice by two sweeps.

    - queued for longer than SWEEP_QUEUED_AFTER_SECONDS → published again (same task id);
    - running with an expired lease → back to queued and published, or failed with
      too_many_attempts once JOB_MAX_ATTEMPTS deliveries were used up.
    """
    now = timezone.now()
    counts = {"republished": 0, "recovered": 0, "failed": 0}
    stale = now - timedelta(seconds=settings.SWEEP_QUEUED_AFTER_SECONDS)
    for job in Job.objects.filter(status=Job.Status.QUEUED, enqueued_at__lt=stale).order_by("created_at")[:500]:
        won = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, enqueued_at=job.enqueued_at).update(enqueued_at=now)
        if won and _try_publish(job):
            counts["republished"] += 1
    for job in Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__lt=now)[:500]:
        same_lease = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, lease_expires_at=job.lease_expires_at)
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            if same_lease.update(status=Job.Status.FAILED, finished_at=now, lease_expires_at=None,
                                 error_code="too_many_attempts",
                                 error_message=f"The job was started {job.attempts} times without finishing."):
                _release_references(job)
                signal_job_done(str(job.pk))
                counts["failed"] += 1
        elif same_lease.update(status=Job.Status.QUEUED, lease_expires_at=None, enqueued_at=now):
            if _try_publish(job):
                counts["recovered"] += 1
    if any(counts.values()):
        logger.warning("sweep: %s", counts)
    return counts


def _try_publish(job: Job) -> bool:
    try:
        _publish(str(job.id))
        return True
    except (KombuOperationalError, RedisError, OSError) as exc:
        logger.warning("sweep could not publish job %s: %s", job.id, type(exc).__name__)
        return False  # still queued: the next sweep tries again


def job_claim(*, job_id: str) -> Job | None:
    """Atomically take the job: queued, or running with an expired lease (its worker died).
    Returns None when another delivery holds it or it is finished."""
    now = timezone.now()
    claimed = (
        Job.objects.filter(pk=job_id)
        .filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, lease_expires_at__lt=now))
        .update(
            status=Job.Status.RUNNING, started_at=now, attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
        )
    )
    if not claimed:
        return None
    return Job.objects.get(pk=job_id)


def job_run(*, job_id: str) -> None:
    """Run one job to its end. Idempotent: a second delivery is a no-op, and an attempt
    whose lease was taken over cannot record its outcome (or keep the image it stored)."""
    job = job_claim(job_id=job_id)
    if job is None:
        logger.info("job %s already taken or finished; skipping this delivery", job_id)
        return
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        outcome = {"status": Job.Status.FAILED, "error_code": "too_many_attempts",
                   "error_message": f"The job was started {job.attempts - 1} times without finishing."}
    else:
        outcome = _outcome(job)
    if not _finish(job, **outcome):
        stored = (outcome.get("result") or {}).get("storageKey")
        if stored:
            storage_delete(stored)
        logger.warning("job %s attempt %d lost its lease; its result was discarded", job.id, job.attempts)


def _outcome(job: Job) -> dict[str, Any]:
    try:
        with job_deadline(settings.JOB_SOFT_TIME_LIMIT):
            return {"status": Job.Status.SUCCEEDED, "result": _execute(job)}
    except ProviderError as exc:
        return {"status": Job.Status.FAILED, "error_code": exc.code, "error_message": exc.message,
                "error_details": exc.details, "retry_after": exc.retry_after}
    except Exception:
        # Last resort so the job ends and its waiter wakes; the traceback is logged here
        # (provider code never lets SDK exceptions, which can hold the API key, get this far).
        logger.exception("job %s crashed", job.id)
        return {"status": Job.Status.FAILED, "error_code": "internal_error",
                "error_message": "The job failed on our side."}


def _execute(job: Job) -> dict[str, Any]:
    if job.kind == Job.Kind.ENHANCEMENT:
        return with_upstream_retries(lambda: prompt_enhance_result(**job.request))
    if job.kind == Job.Kind.GENERATION:
        return image_generate(job=job)
    raise ValueError(f"unknown job kind {job.kind!r}")


def _release_references(job: Job) -> None:
    """Reference uploads are only needed until the job ends; a crashed attempt keeps them
    for the redelivery."""
    for ref in (job.request or {}).get("references", []):
        storage_delete(ref["key"])


def generation_create(
    *,
    key: ApiKey,
    prompt: str,
    filename: str,
    aspect_ratio: str = "1:1",
    auto_enhance: bool = False,
    template: str | None = None,
    options: dict[str, Any] | None = None,
    files: list[UploadedFile] | None = None,
    tags: list[str] | None = None,
    idempotency: Idempotency | None = None,
) -> Job:
    """Validate and store reference images (by real content, before anything is queued),
    then create the generation job. Images travel by storage key, never via the broker.
    An idempotent replay returns the original job and stores nothing."""
    if idempotency is not None:
        existing = job_find_idempotent(key=key, idempotency=idempotency)
        if existing is not None:
            return existing
    references = [_reference_checked(upload) for upload in files or []]
    if tags:
        logger.info("generation request tags=%s", ",".join(tags))  # logged, not stored
    stored = [
        {"key": reference_save(project=key.project_scope, mime_type=info.mime_type, data=data),
         "mimeType": info.mime_type, "name": name}
        for name, data, info in references
    ]
    job = job_create(
        key=key, kind=Job.Kind.GENERATION, idempotency=idempotency,
        request={
            "prompt": prompt, "filename": filename, "aspect_ratio": aspect_ratio,
            "auto_enhance": auto_enhance, "template": template, "options": options or {},
            "references": stored,
        },
    )
    if job.replayed:  # lost a race with a concurrent duplicate: its job has its own copies
        for ref in stored:
            storage_delete(ref["key"])
    return job


def _reference_checked(upload: UploadedFile) -> tuple[str, bytes, ImageInfo]:
    name = upload.name or "file"
    limit = settings.MAX_UPLOAD_FILE_BYTES
    if upload.size > limit:
        raise ReferenceImageTooLarge(
            f"Reference image {name!r} is {upload.size} bytes; the limit is {limit} bytes (5 MB) per file.",
            field="files", details={"file": name, "size": upload.size, "limit": limit},
        )
    data = upload.read()
    try:
        info = inspect_image(data)
    except ImageRejected as exc:
        raise ReferenceImageInvalid(
            f"Reference image {name!r} was rejected: {exc.reason}. Detected type: {exc.detected}; "
            f"allowed: PNG, JPEG, WebP.",
            field="files",
            details={"file": name, "detectedType": exc.detected, "allowed": sorted(ALLOWED_FORMATS.values())},
        ) from None
    return name, data, info


def image_generate(*, job: Job) -> dict[str, Any]:
    """Enhance (if asked), generate, check the bytes are a real image, store them.
    Nothing is stored when any step fails."""
    request = job.request
    prompt = request["prompt"]
    enhancement = None
    if request.get("auto_enhance"):
        enhancement = with_upstream_retries(
            lambda: prompt_enhance(prompt=prompt, template=request.get("template"), options=request.get("options"))
        )
        prompt = enhancement["enhancedPrompt"]
    references = [
        ReferenceImage(data=storage_read(ref["key"]), mime_type=ref["mimeType"]) for ref in request.get("references", [])
    ]
    provider = get_image_provider()
    image = with_upstream_retries(
        lambda: provider.generate(prompt=prompt, reference_images=references, aspect_ratio=request["aspect_ratio"])
    )
    try:
        info = inspect_image(image.data, decode=False)
    except ImageRejected as exc:
        raise ProviderError(
            "upstream_invalid_response", f"The model returned bytes that are not a usable image: {exc.reason}.",
            details={"detectedType": exc.detected},
        ) from None
    storage_key = image_save(project=job.project_id, filename=request["filename"], mime_type=info.mime_type,
                             data=image.data)
    return {
        "storageKey": storage_key,
        "filename": f"{request['filename']}.{EXTENSIONS[info.mime_type]}",
        "contentType": info.mime_type,
        "width": info.width,
        "height": info.height,
        "description": image.description,
        "model": image.model,
        "provider": provider.name,
        "generatedAt": iso(timezone.now()),
        "promptEnhancement": enhancement,
    }


def with_upstream_retries(call: Callable[[], Any]) -> Any:
    """Retry retryable provider errors with exponential backoff and jitter, honouring the
    upstream's Retry-After (capped), at most UPSTREAM_MAX_ATTEMPTS calls in all."""
    attempts = settings.UPSTREAM_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ProviderError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            backoff = settings.UPSTREAM_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
            delay = max(backoff, exc.retry_after or 0) * random.uniform(1.0, 1.25)
            delay = min(delay, settings.UPSTREAM_RETRY_MAX_SECONDS)
            left = time_left()
            if left is not None and left <= delay:
                raise  # no time for another attempt: report the upstream error as it is
            logger.warning("upstream %s (attempt %d/%d); retrying in %.2fs", exc.code, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _finish(job: Job, *, status: str, only_if_status: str = Job.Status.RUNNING, **fields: Any) -> bool:
    """Record the outcome once, drop the job's reference uploads, then wake the waiters
    (in that order: a client that sees the answer sees the cleaned-up storage). The status
    condition makes a late second delivery unable to overwrite a finished job."""
    values = {"status": status, "finished_at": timezone.now(), "lease_expires_at": None, **fields}
    # attempts: only the attempt that holds the claim may finish the job.
    updated = Job.objects.filter(pk=job.pk, status=only_if_status, attempts=job.attempts).update(**values)
    if updated:
        _release_references(job)
        signal_job_done(str(job.pk))
    return bool(updated)


def job_wait(*, job: Job, timeout: float) -> Job:
    """Wait up to ``timeout`` seconds for the job to finish; return the fresh row."""
    job.refresh_from_db()
    if job.is_finished:
        return job
    if connection.vendor != "sqlite":
        # A waiting request must not hold a pooled server connection for up to a minute
        # (SQLite has no server side; its per-thread connection is kept).
        connection.close()
    wait_job_done(str(job.pk), timeout)
    job.refresh_from_db()
    return job
