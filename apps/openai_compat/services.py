"""The /v1 use cases: an OpenAI images request becomes the same generation job /api
creates (apps.generation.services.generation_create), then waits for it, since /v1 never
answers 202.

Guarantees: the job is an ordinary generation job (GET /api/jobs/{id} shows it, webhooks
fire, Idempotency-Key replays it); a wait that runs out leaves the job running (504
job_timeout names it)."""
from __future__ import annotations

from django.conf import settings

from apps.generation.services import CheckedReference, generation_create, image_model_resolve
from apps.jobs.errors import JobError
from apps.jobs.models import Job
from apps.jobs.options import JobOptions
from apps.jobs.services import JobCreated, job_wait_counted
from apps.keys.models import ApiKey
from apps.openai_compat.errors import JobTimeout
from workers.providers.image_models import image_size_supported

# OpenAI's sizes → our aspect ratios (Gemini picks the pixels; `size` in the answer says which).
SIZES = {"1024x1024": "1:1", "1536x1024": "3:2", "1024x1536": "2:3", "1792x1024": "16:9", "1024x1792": "9:16",
         "auto": "1:1"}
# Stored images are named after this (the native API asks for a filename; OpenAI's does not).
FILENAME = "image"


def openai_images_create(
    *,
    key: ApiKey,
    prompt: str,
    aspect_ratio: str,
    model: str | None = None,
    n: int = 1,
    quality: str | None = None,
    output_format: str = "png",
    files: list[CheckedReference] | None = None,
    job_options: JobOptions | None = None,
) -> JobCreated:
    """Create the generation job for an OpenAI images request. ``quality="hd"`` asks for 2K
    from models that take an image size, and is ignored by the others (as every other
    quality is): an OpenAI app sending it must not fail on a model with a fixed size."""
    resolved = image_model_resolve(model)
    image_size = "2K" if quality == "hd" and image_size_supported(resolved) else None
    return generation_create(
        key=key, prompt=prompt, filename=FILENAME, aspect_ratio=aspect_ratio, files=files, model=resolved,
        image_size=image_size, n=n, output_format=output_format, job_options=job_options,
    )


def openai_job_wait(created: JobCreated) -> Job:
    """The finished, succeeded job, waiting up to OPENAI_COMPAT_WAIT_SECONDS. A failed or
    canceled job raises its error; one still unfinished raises JobTimeout (it keeps running)."""
    job = created.job
    if not job.is_finished:
        job = job_wait_counted(job=job, timeout=settings.OPENAI_COMPAT_WAIT_SECONDS)
    if job.status == Job.Status.SUCCEEDED:
        return job
    if job.is_finished:
        raise JobError.of(job)
    raise JobTimeout(
        f"Job {job.id} did not finish within {settings.OPENAI_COMPAT_WAIT_SECONDS:g} s; it keeps running: "
        f"GET /api/jobs/{job.id} returns its images once it is done.",
        details={"jobId": str(job.id)},
    )
