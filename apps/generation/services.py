"""Image generation use cases: create a generation job (reference images checked by their
real content and stored before anything is queued), and run one in the worker (enhance if
asked, generate, check the bytes, store them).

Guarantees:
- generation_create: an idempotent replay returns the original job and stores nothing;
  images travel by storage key, never via the broker.
- image_generate: nothing is stored when any step fails; the job's reference uploads are
  dropped once the job has ended (release_references, called by the jobs core).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from apps.generation.errors import ReferenceImageCorrupt, ReferenceImageInvalid, ReferenceImageTooLarge
from apps.generation.images import ALLOWED_FORMATS, EXTENSIONS, ImageInfo, ImageRejected, inspect_image
from apps.generation.storage import image_save, reference_save, storage_delete, storage_read
from apps.jobs.errors import UpstreamInvalidResponse
from apps.jobs.options import JobOptions
from apps.jobs.models import Job
from apps.jobs.services import JobCreated, job_create
from apps.keys.models import ApiKey
from banatie.timefmt import iso
from workers.providers import get_image_provider, get_text_provider
from workers.providers.base import ReferenceImage

logger = logging.getLogger(__name__)

GENERATION = "generation"


def generation_create(
    *,
    key: ApiKey,
    prompt: str,
    filename: str,
    aspect_ratio: str = "1:1",
    auto_enhance: bool = False,
    enhancement_options: dict[str, Any] | None = None,
    files: list[CheckedReference] | None = None,
    tags: list[str] | None = None,
    job_options: JobOptions | None = None,
) -> JobCreated:
    """Create the generation job; unless this is an idempotent replay, the reference images
    (checked by content: reference_checked) are stored first. ``enhancement_options``: the template and
    style options for autoEnhance (snake_case)."""
    options = dict(enhancement_options or {})
    template = options.pop("template", None)

    def request() -> dict[str, Any]:  # called by job_create only when this is not a replay
        if tags:
            logger.info("generation request tags=%s", ",".join(tags))  # logged, not stored
        stored = [
            {"key": reference_save(project=key.project_scope, mime_type=ref.info.mime_type, data=ref.data),
             "mimeType": ref.info.mime_type, "name": ref.name}
            for ref in files or []
        ]
        return {"prompt": prompt, "filename": filename, "aspect_ratio": aspect_ratio, "auto_enhance": auto_enhance,
                "template": template, "options": options, "references": stored}

    return job_create(key=key, kind=GENERATION, job_options=job_options, request=request)


@dataclass(frozen=True)
class CheckedReference:
    name: str
    data: bytes
    info: ImageInfo


def reference_checked(upload: UploadedFile) -> CheckedReference:
    """An uploaded reference image, read and identified by its content (not its name or
    declared type); ReferenceImageTooLarge / ReferenceImageInvalid name the file."""
    name = upload.name or "file"
    limit = settings.MAX_UPLOAD_FILE_BYTES
    if upload.size > limit:
        raise ReferenceImageTooLarge(
            f"Reference image {name!r} is {upload.size} bytes; the limit is {limit} bytes (5 MB) per file.",
            field="files", details={"file": name, "size": upload.size, "limit": limit},
        )
    data = upload.read()
    try:
        info = inspect_image(data, max_pixels=settings.MAX_REFERENCE_PIXELS)
    except ImageRejected as exc:
        raise ReferenceImageInvalid(
            f"Reference image {name!r} was rejected: {exc.reason}. Detected type: {exc.detected}; "
            f"allowed: PNG, JPEG, WebP.",
            field="files",
            details={"file": name, "detectedType": exc.detected, "allowed": sorted(ALLOWED_FORMATS.values())},
        ) from None
    return CheckedReference(name=name, data=data, info=info)


def image_generate(job: Job) -> dict[str, Any]:
    """Enhance (if asked), generate, check the bytes are a real image, store them.
    Nothing is stored when any step fails. Returns the job's result."""
    request = job.request
    prompt = request["prompt"]
    enhancement = None
    if request.get("auto_enhance"):
        enhancement = _prompt_enhancement(prompt, template=request.get("template"), options=request.get("options"))
        prompt = enhancement["enhancedPrompt"]
    references = [_reference_decoded(ref) for ref in request.get("references", [])]
    provider = get_image_provider()
    image = provider.generate(prompt=prompt, reference_images=references, aspect_ratio=request["aspect_ratio"])
    try:
        info = inspect_image(image.data)
    except ImageRejected as exc:
        raise UpstreamInvalidResponse(
            f"The model returned bytes that are not a usable image: {exc.reason}.",
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


def image_upstream_model(job: Job) -> str | None:
    """The Gemini model this job calls first (the text model when autoEnhance rewrites the
    prompt), or None on the offline provider: what the jobs core paces it by."""
    provider = get_text_provider() if job.request.get("auto_enhance") else get_image_provider()
    return getattr(provider, "model", None) if provider.name == "gemini" else None


def images_asked(request: dict[str, Any]) -> int:
    """How many images a generation request asks for."""
    return int(request.get("n") or 1)


def images_in(result: dict[str, Any]) -> int:
    """How many images a generation job's result holds."""
    return len(result.get("images") or [result])


def _reference_decoded(ref: dict[str, Any]) -> ReferenceImage:
    """A stored reference, decoded once in the worker (one at a time, so memory stays
    bounded) before it goes upstream: a corrupt file fails the job, not Gemini's call."""
    data = storage_read(ref["key"])
    try:
        inspect_image(data, decode=True, max_pixels=settings.MAX_REFERENCE_PIXELS)
    except ImageRejected as exc:
        raise ReferenceImageCorrupt(
            f"Reference image {ref.get('name', 'file')!r} could not be decoded: {exc.reason}.",
            details={"file": ref.get("name", "file"), "detectedType": exc.detected},
        ) from None
    return ReferenceImage(data=data, mime_type=ref["mimeType"])


def _prompt_enhancement(prompt: str, *, template: str | None, options: dict[str, Any] | None) -> dict[str, Any]:
    """autoEnhance: the text provider rewrites the prompt first (the stored promptEnhancement)."""
    provider = get_text_provider()
    result = provider.enhance(prompt=prompt, template=template, options=options or {})
    return {
        "originalPrompt": prompt,
        "enhancedPrompt": result.enhanced_prompt,
        "detectedLanguage": result.detected_language,
        "appliedTemplate": result.applied_template,
        "enhancements": result.enhancements,
        "provider": provider.name,
        "model": result.model,
    }


def release_references(request: dict[str, Any]) -> None:
    """Reference uploads are only needed until the job ends; a crashed attempt keeps them
    for the redelivery (the jobs core calls this only once the job has ended)."""
    for ref in (request or {}).get("references", []):
        storage_delete(ref["key"])


def discard_image(result: dict[str, Any] | None) -> None:
    """An attempt that lost its lease must not leave its image behind."""
    if result and result.get("storageKey"):
        storage_delete(result["storageKey"])
