"""Prompt enhancement use cases: create an enhancement job (/api/enhance) and run one in
the worker.

Guarantees: as apps.jobs.services.job_create (idempotent replays create nothing);
prompt_enhance stores nothing and raises the provider's JobError on upstream failures."""
from __future__ import annotations

from typing import Any

from apps.jobs.options import JobOptions
from apps.jobs.models import Job
from apps.jobs.services import JobCreated, job_create
from apps.keys.models import ApiKey
from workers.providers import get_text_provider

ENHANCEMENT = "enhancement"


def enhancement_create(*, key: ApiKey, prompt: str, options: dict[str, Any] | None = None,
                       job_options: JobOptions | None = None) -> JobCreated:
    """Queue the enhancement of ``prompt`` (options in snake_case, as the providers take them)."""
    return job_create(key=key, kind=ENHANCEMENT, job_options=job_options,
                      request={"prompt": prompt, "options": options or {}})


def prompt_enhance(*, prompt: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rewrite ``prompt`` with the active text provider; returns the /api/enhance result
    (the documented shape, stored on the job)."""
    options = options or {}
    provider = get_text_provider()
    result = provider.enhance(prompt=prompt, template=None, options=options)
    return {
        "originalPrompt": prompt,
        "enhancedPrompt": result.enhanced_prompt,
        "detectedLanguage": result.detected_language,
        "appliedTemplate": result.applied_template,
        "metadata": {
            "style": options.get("image_style") or result.applied_template,
            "aspectRatio": options.get("aspect_ratio"),
            "enhancements": result.enhancements,
            "provider": provider.name,
            "model": result.model,
        },
    }


def enhancement_run(job: Job) -> dict[str, Any]:
    """The enhancement job's work (called by the jobs core in the worker)."""
    return prompt_enhance(prompt=job.request["prompt"], options=job.request.get("options"))


def enhancement_upstream_model(job: Job) -> str | None:
    """The Gemini text model the job calls, or None on the offline provider (apps.jobs.pacing)."""
    provider = get_text_provider()
    return getattr(provider, "model", None) if provider.name == "gemini" else None
