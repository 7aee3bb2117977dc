"""Errors only the OpenAI-compatible routes raise (their shape on the wire: shapes.py)."""
from __future__ import annotations

from banatie.errors import ApiError


class UnsupportedParameter(ApiError):
    status_code = 400
    code = "unsupported_parameter"
    error = "Validation failed"
    hint = "Leave this parameter out; docs/openai-compatibility.md lists what is supported, mapped and ignored."


class JobTimeout(ApiError):
    """/v1 cannot answer 202 (the OpenAI SDK does not poll): a job still running after
    OPENAI_COMPAT_WAIT_SECONDS is this 504. The job keeps running."""

    status_code = 504
    code = "job_timeout"
    error = "Gateway timeout"
    hint = "The job keeps running: read its result with GET /api/jobs/{jobId} (the id is in the message)."
