"""Image generation use cases: create a generation job (reference images checked by their
real content and stored before anything is queued), and run one in the worker (enhance if
asked, generate, check the bytes, store them).

Guarantees:
- generation_create: an idempotent replay returns the original job and stores nothing;
  images travel by storage key, never via the broker.
- image_generate: nothing is stored when any step fails; with n > 1 images the n upstream
  calls run at once and the job succeeds only if all n did (a failed job keeps none of its
  images); the job's reference uploads are dropped once the job has ended
  (release_references, called by the jobs core).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from apps.generation.errors import (
    ImageSizeUnsupported, ModelNotAllowed, ReferenceImageCorrupt, ReferenceImageInvalid, ReferenceImageTooLarge,
)
from apps.generation.images import (
    ALLOWED_FORMATS, EXTENSIONS, ImageInfo, ImageRejected, image_convert, inspect_image,
)
from apps.generation.storage import image_save, reference_save, storage_delete, storage_read
from apps.jobs.errors import JobError, UpstreamInvalidResponse
from apps.jobs.options import JobOptions
from apps.jobs.models import Job
from apps.jobs.parallel import run_concurrently
from apps.jobs.services import JobCreated, job_create
from apps.keys.models import ApiKey
from banatie.timefmt import iso
from workers.providers import get_image_provider, get_text_provider
from workers.providers.base import ImageProvider, ReferenceImage
from workers.providers.image_models import OPENAI_MODEL_ALIASES, image_size_supported

logger = logging.getLogger(__name__)

GENERATION = "generation"
MAX_IMAGES = 4  # per request (n): each is one upstream call, run at once


def image_model_resolve(model: str | None) -> str:
    """The GEMINI_IMAGE_MODELS entry a request's ``model`` names: None, "" and OpenAI's own
    names (dall-e-2, dall-e-3, gpt-image-1) mean the default model; anything else must be
    on the list (ModelNotAllowed lists it)."""
    allowed = list(settings.GEMINI_IMAGE_MODELS)
    if not model or model in OPENAI_MODEL_ALIASES:
        return settings.GEMINI_IMAGE_MODEL
    if model not in allowed:
        raise ModelNotAllowed(
            f"Model {model!r} is not offered here; allowed: {', '.join(allowed)} "
            f"(or {', '.join(OPENAI_MODEL_ALIASES)}, which mean {settings.GEMINI_IMAGE_MODEL}).",
            field="model", details={"model": model, "allowed": allowed},
        )
    return model


def image_size_checked(*, model: str, image_size: str | None) -> str | None:
    """``image_size`` if ``model`` takes one; ImageSizeUnsupported names the model otherwise."""
    if image_size is not None and not image_size_supported(model):
        with_sizes = [m for m in settings.GEMINI_IMAGE_MODELS if image_size_supported(m)]
        raise ImageSizeUnsupported(
            f"Model {model!r} has a fixed image size and does not accept imageSize {image_size!r}"
            + (f"; models that do: {', '.join(with_sizes)}." if with_sizes else "."),
            field="imageSize", details={"model": model, "imageSize": image_size, "modelsWithSizes": with_sizes},
        )
    return image_size


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
    model: str | None = None,
    image_size: str | None = None,
    n: int = 1,
    output_format: str | None = None,
    job_options: JobOptions | None = None,
) -> JobCreated:
    """Create the generation job; unless this is an idempotent replay, the reference images
    (checked by content: reference_checked) are stored first. ``enhancement_options``: the template and
    style options for autoEnhance (snake_case). ``model``: a GEMINI_IMAGE_MODELS entry or an
    OpenAI alias (image_model_resolve); ``image_size``: 1K/2K/4K for models that take one;
    ``n``: images (1-MAX_IMAGES, one upstream call each); ``output_format``: png, jpeg or
    webp to store the images in (None: as the model sent them)."""
    resolved = image_model_resolve(model)
    image_size = image_size_checked(model=resolved, image_size=image_size)
    if not 1 <= n <= MAX_IMAGES:  # the serializers refuse it first; this guards other callers
        raise ValueError(f"n must be between 1 and {MAX_IMAGES}")
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
                "template": template, "options": options, "references": stored, "model": resolved,
                "image_size": image_size, "n": n, "output_format": output_format}

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
    """Enhance (if asked), generate ``n`` images (n upstream calls at once), check the bytes
    are real images, store them. Nothing is kept when any step fails: a failed image fails
    the job (its error names every image's outcome in details.images) and the images that
    did succeed are deleted. Returns the job's result: the first image's fields at the top
    (the single-image shape clients already read), every image under ``images``, and the
    usage of each and in all."""
    request = job.request
    prompt = request["prompt"]
    enhancement = None
    if request.get("auto_enhance"):
        enhancement = _prompt_enhancement(prompt, template=request.get("template"), options=request.get("options"))
        prompt = enhancement["enhancedPrompt"]
    references = [_reference_decoded(ref) for ref in request.get("references", [])]
    provider = get_image_provider()
    n = int(request.get("n") or 1)
    outcomes = run_concurrently([
        (lambda index=index: _image_one(job, provider, prompt=prompt, references=references, index=index, n=n))
        for index in range(n)
    ])
    if not all(outcome.ok for outcome in outcomes):
        for outcome in outcomes:
            if outcome.ok:
                storage_delete(outcome.value["storageKey"])  # the job fails: keep none of its images
        raise _images_failed([outcome.error for outcome in outcomes])
    images = [outcome.value for outcome in outcomes]
    first = images[0]
    return {
        **{name: first[name] for name in ("storageKey", "filename", "contentType", "width", "height", "description",
                                          "model")},
        "provider": provider.name,
        "generatedAt": iso(timezone.now()),
        "promptEnhancement": enhancement,
        "imageSize": request.get("image_size"),
        "images": images,
        "usage": _usage_sum(images, model=first["model"]),
    }


def _image_one(job: Job, provider: ImageProvider, *, prompt: str, references: list[ReferenceImage], index: int,
               n: int) -> dict[str, Any]:
    """One upstream call: the image checked, converted if asked, stored; its result entry."""
    request = job.request
    image = provider.generate(prompt=prompt, reference_images=references, aspect_ratio=request["aspect_ratio"],
                              model=request.get("model"), image_size=request.get("image_size"))
    data = image.data
    try:
        inspect_image(data)
        if request.get("output_format"):
            data = image_convert(data, output_format=request["output_format"])
        info = inspect_image(data)
    except ImageRejected as exc:
        raise UpstreamInvalidResponse(
            f"The model returned bytes that are not a usable image: {exc.reason}.",
            details={"detectedType": exc.detected},
        ) from None
    filename = request["filename"] if n == 1 else f"{request['filename']}-{index + 1}"
    storage_key = image_save(project=job.project_id, filename=filename, mime_type=info.mime_type, data=data)
    return {
        "storageKey": storage_key,
        "filename": f"{filename}.{EXTENSIONS[info.mime_type]}",
        "contentType": info.mime_type,
        "width": info.width,
        "height": info.height,
        "description": image.description,
        "model": image.model,
        "usage": image.usage.as_dict(),
    }


def _images_failed(errors: list[BaseException | None]) -> BaseException:
    """The job's error when some of its images failed: the first failure's own class (so
    its status and code stay what one image's failure would give), with every image's
    outcome in details.images. Anything but a JobError is re-raised as it is (a crash)."""
    failed = [err for err in errors if err is not None]
    first = failed[0]
    if len(errors) == 1 or not isinstance(first, JobError):
        return first
    per_image = [{"index": index, "status": "succeeded"} if err is None else
                 {"index": index, "status": "failed", "code": getattr(err, "code", "internal_error"),
                  "message": getattr(err, "message", "The image failed.")}
                 for index, err in enumerate(errors)]
    return type(first)(
        f"{len(failed)} of {len(errors)} images failed; the first: {first.message}",
        details={**(first.details or {}), "images": per_image}, retry_after=first.retry_after,
    )


def _usage_sum(images: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    total: dict[str, Any] = {"model": model, "images": len(images)}
    for image in images:
        for name, value in image["usage"].items():
            total[name] = total.get(name, 0) + value
    return total

def image_upstream_model(job: Job) -> str | None:
    """The Gemini model this job calls first (the text model when autoEnhance rewrites the
    prompt), or None on the offline provider: what the jobs core paces it by."""
    if job.request.get("auto_enhance"):
        provider = get_text_provider()
        return getattr(provider, "model", None) if provider.name == "gemini" else None
    provider = get_image_provider()
    # The model the request chose (GEMINI_IMAGE_MODELS); jobs from before model choice: the default.
    return (job.request.get("model") or getattr(provider, "model", None)) if provider.name == "gemini" else None


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
    """An attempt that lost its lease must not leave its images behind (retention releases
    them this way too). A result from before `images` existed has only the top-level key."""
    if not result:
        return
    keys = {image["storageKey"] for image in result.get("images") or []}
    if result.get("storageKey"):
        keys.add(result["storageKey"])
    for key in sorted(keys):
        storage_delete(key)
