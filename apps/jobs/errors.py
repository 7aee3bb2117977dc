"""Errors of the jobs core: the ways a job can end (stored on the job by code and rebuilt
from it), an unknown job, and Idempotency-Key misuse.

Providers raise the JobError subclasses directly (UpstreamUnavailable(..., retryable=True)),
so a failure carries its class from the upstream call to the HTTP answer; the stored code
finds the class again through JobError.for_code, which every subclass joins by being
defined (JobError.of rebuilds a failed job's error).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from banatie.errors import ApiError, InternalError, NotFound

if TYPE_CHECKING:
    from apps.jobs.models import Job


class JobError(ApiError):
    """An outcome a job can end with. ``retryable``: the upstream call may be tried again
    within the job; ``retry_after``: the upstream's hint in seconds, if it gave one (the
    Retry-After header falls back to ``default_retry_after``)."""

    retryable = False
    default_retry_after: ClassVar[float | None] = None
    _by_code: ClassVar[dict[str, type[JobError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        JobError._by_code[cls.code] = cls

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        wait = retry_after or self.default_retry_after
        if wait:
            self.headers.setdefault("Retry-After", str(max(1, int(round(wait)))))

    @classmethod
    def for_code(cls, code: str) -> type[JobError]:
        """The class a stored error code names; unknown codes are an internal error."""
        return cls._by_code.get(code, JobCrashed)

    @classmethod
    def of(cls, job: Job) -> JobError:
        """The error a failed job stored, rebuilt for its HTTP answer."""
        err = cls.for_code(job.error_code)(job.error_message or None, details=job.error_details or None,
                                            retry_after=job.retry_after)
        err.extra["jobId"] = str(job.id)
        return err


class ClaimUnavailable(Exception):
    """The database could not be reached to claim a job (e.g. the connection pool was
    exhausted). Not an API error: the task is retried, its message is not acked-and-lost."""


class JobNotFound(NotFound):
    code = "job_not_found"
    default_message = "No job with this id for your project."


class QueueUnavailable(JobError):
    status_code = 503
    code = "queue_unavailable"
    error = "Service unavailable"
    default_message = "The job queue (Redis) is unreachable; the request was not accepted."
    default_retry_after = 5
    hint = "Retry after the number of seconds in Retry-After."


class UpstreamUnavailable(JobError):
    status_code = 503
    code = "upstream_unavailable"
    retryable = True
    error = "Image generation failed"
    default_message = "Gemini is unavailable or over quota right now."
    default_retry_after = 10
    hint = "Retry after the number of seconds in Retry-After."


class UpstreamRejected(JobError):
    status_code = 502
    code = "upstream_rejected"
    error = "Image generation failed"
    default_message = "Gemini refused the request."
    hint = "Operators: check GEMINI_API_KEY, the model names and the request in the server log."


class UpstreamInvalidResponse(JobError):
    status_code = 502
    code = "upstream_invalid_response"
    error = "Image generation failed"
    default_message = "Gemini answered with something that is not a valid result."
    hint = "Retry; if it persists, report the requestId."


class ContentBlocked(JobError):
    status_code = 422
    code = "content_blocked"
    error = "Image generation failed"
    default_message = "The model refused this prompt for safety reasons."
    hint = "Rephrase the prompt; the reason is in details.reason."


class NoImageReturned(JobError):
    status_code = 422
    code = "no_image_returned"
    error = "Image generation failed"
    default_message = "The model answered without an image."
    hint = "The model's own words are in details.modelText; rephrase the prompt to ask for an image."


class TooManyAttempts(JobError):
    status_code = 500
    code = "too_many_attempts"
    error = "Image generation failed"
    default_message = "The job was started too many times without finishing (workers crashed or timed out)."
    hint = "Retry the request; if it persists, report the requestId."


class JobTimedOut(JobError):
    status_code = 504
    code = "job_timed_out"
    error = "Image generation failed"
    default_message = "The job ran longer than its time limit and was stopped."
    hint = "Retry; the upstream model may be slow right now."


class JobCanceled(JobError):
    """Stored on a job canceled by POST /api/jobs/{id}/cancel (or the admin action); a
    synchronous request waiting on it answers with it."""

    status_code = 409
    code = "job_canceled"
    error = "Job canceled"
    default_message = "The job was canceled before it finished; nothing was generated or stored."
    hint = "Send the request again if you still want its result."


class DeadlineExceeded(JobError):
    """Stored on a job whose Cancel-After deadline passed before it finished."""

    status_code = 409
    code = "deadline_exceeded"
    error = "Job canceled"
    default_message = "The job did not finish before its Cancel-After deadline and was canceled."
    hint = "Send the request again with a longer Cancel-After, or without one."


class JobCrashed(JobError):
    """The last resort when a job's code raised something unexpected (or an unknown code
    was stored); worded as the service's own internal error."""

    status_code = InternalError.status_code
    code = InternalError.code
    error = InternalError.error
    default_message = "The job failed on our side."
    hint = InternalError.hint


class JobAlreadyFinished(ApiError):
    status_code = 409
    code = "job_already_finished"
    error = "Conflict"
    default_message = "The job already finished; only queued or running jobs can be canceled."
    hint = "Nothing to cancel: read the job's result with GET /api/jobs/{jobId}."


class CancelAfterInvalid(ApiError):
    status_code = 400
    code = "cancel_after_invalid"
    error = "Validation failed"
    hint = "Send Cancel-After as a duration up to 24 hours: 30s, 2m, 1h, or plain seconds (90)."


class InvalidCursor(ApiError):
    status_code = 400
    code = "invalid_cursor"
    error = "Validation failed"
    default_message = "The cursor parameter is not a cursor this server issued."
    hint = "Pass nextCursor exactly as the previous page returned it, or leave cursor out for the first page."


class IdempotencyKeyInvalid(ApiError):
    status_code = 400
    code = "idempotency_key_invalid"
    error = "Validation failed"
    hint = "Use 1-255 visible ASCII characters, e.g. a UUID, unique per logical request."


class IdempotencyKeyReused(ApiError):
    status_code = 422
    code = "idempotency_key_reused"
    error = "Validation failed"
    default_message = "This Idempotency-Key was already used with a different request body."
    hint = "Use a new Idempotency-Key for a different request; reuse a key only to retry the exact same request."
