"""Errors a job can end with. Jobs store only (code, message, details); rendering looks
the class up by code, so the HTTP status is decided in one place."""
from __future__ import annotations

from banatie.errors import ApiError, InternalError, NotFound


class JobNotFound(NotFound):
    code = "job_not_found"
    default_message = "No job with this id for your project."


class QueueUnavailable(ApiError):
    status_code = 503
    code = "queue_unavailable"
    error = "Service unavailable"
    default_message = "The job queue (Redis) is unreachable; the request was not accepted."
    default_retry_after = 5
    hint = "Retry after the number of seconds in Retry-After."


class UpstreamUnavailable(ApiError):
    status_code = 503
    code = "upstream_unavailable"
    error = "Image generation failed"
    default_message = "Gemini is unavailable or over quota right now."
    default_retry_after = 10
    hint = "Retry after the number of seconds in Retry-After."


class UpstreamRejected(ApiError):
    status_code = 502
    code = "upstream_rejected"
    error = "Image generation failed"
    default_message = "Gemini refused the request."
    hint = "Operators: check GEMINI_API_KEY, the model names and the request in the server log."


class UpstreamInvalidResponse(ApiError):
    status_code = 502
    code = "upstream_invalid_response"
    error = "Image generation failed"
    default_message = "Gemini answered with something that is not a valid result."
    hint = "Retry; if it persists, report the requestId."


class ContentBlocked(ApiError):
    status_code = 422
    code = "content_blocked"
    error = "Image generation failed"
    default_message = "The model refused this prompt for safety reasons."
    hint = "Rephrase the prompt; the reason is in details.reason."


class NoImageReturned(ApiError):
    status_code = 422
    code = "no_image_returned"
    error = "Image generation failed"
    default_message = "The model answered without an image."
    hint = "The model's own words are in details.modelText; rephrase the prompt to ask for an image."


class TooManyAttempts(ApiError):
    status_code = 500
    code = "too_many_attempts"
    error = "Image generation failed"
    default_message = "The job was started too many times without finishing (workers crashed or timed out)."
    hint = "Retry the request; if it persists, report the requestId."


class JobTimedOut(ApiError):
    status_code = 504
    code = "job_timed_out"
    error = "Image generation failed"
    default_message = "The job ran longer than its time limit and was stopped."
    hint = "Retry; the upstream model may be slow right now."


JOB_ERRORS: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        QueueUnavailable, UpstreamUnavailable, UpstreamRejected, UpstreamInvalidResponse,
        ContentBlocked, NoImageReturned, TooManyAttempts, JobTimedOut, InternalError,
    )
}


def job_error(code: str, message: str, details: dict | None, retry_after: float | None) -> ApiError:
    cls = JOB_ERRORS.get(code, InternalError)
    retry_after = retry_after or getattr(cls, "default_retry_after", None)
    headers = {"Retry-After": str(max(1, int(round(retry_after))))} if retry_after else {}
    return cls(message or None, details=details or None, headers=headers)


class ReferenceImageInvalid(ApiError):
    status_code = 400
    code = "reference_image_invalid"
    error = "Reference image validation failed"
    hint = "Send PNG, JPEG or WebP images of at most 5 MB each (at most 3 files)."


class ReferenceImageTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"
    error = "Reference image validation failed"
    hint = "Send PNG, JPEG or WebP images of at most 5 MB each (at most 3 files)."


class ImageNotFound(NotFound):
    code = "image_not_found"
    default_message = "No image at this path."
