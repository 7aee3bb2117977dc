"""Errors of image generation's own inputs and outputs (a job's upstream failures are the
jobs core's: apps.jobs.errors)."""
from __future__ import annotations

from apps.jobs.errors import JobError
from banatie.errors import ApiError, NotFound


class ReferenceImageInvalid(ApiError):
    status_code = 400
    code = "reference_image_invalid"
    error = "Reference image validation failed"
    hint = "Send PNG, JPEG or WebP images of at most 5 MB each (at most 3 files)."


class ReferenceImageCorrupt(JobError):
    """Found by the worker's full decode (the web process only reads headers and checksums)."""

    status_code = 400
    code = "reference_image_corrupt"
    error = "Reference image validation failed"
    default_message = "A reference image could not be decoded."
    hint = "Send complete PNG, JPEG or WebP files (re-export the image if it came from a cut-off download)."


class ReferenceImageTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"
    error = "Reference image validation failed"
    hint = "Send PNG, JPEG or WebP images of at most 5 MB each (at most 3 files)."


class ImageNotFound(NotFound):
    code = "image_not_found"
    default_message = "No image at this path."


class ModelNotAllowed(ApiError):
    status_code = 400
    code = "model_not_allowed"
    error = "Validation failed"
    hint = "Send one of the models in details.allowed (GET /v1/models lists them), or leave model out for the default."


class ImageSizeUnsupported(ApiError):
    status_code = 400
    code = "image_size_unsupported"
    error = "Validation failed"
    hint = "Leave imageSize out for this model, or choose a model that takes one (details.modelsWithSizes)."
