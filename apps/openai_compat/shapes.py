"""OpenAI's error shape, made from Banatie's: `{"error": {"message", "type", "param", "code"}}`.

The one exception handler (banatie/errors.py) renders every error, /v1 included; on /v1 the
middleware re-skins that body, so an error has one definition (its ApiError class and
docs/errors.md) and two wire shapes. `code` stays our stable code; `type` and the status
are what the OpenAI SDK turns into its typed exceptions (AuthenticationError for 401,
PermissionDeniedError for 403, BadRequestError for 400, RateLimitError for 429, ...)."""
from __future__ import annotations

from typing import Any

PREFIX = "/v1/"

# OpenAI answers a refused prompt with 400 invalid_request_error; our /api says 422.
STATUS_BY_CODE = {"content_blocked": 400}


def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def openai_error(body: dict[str, Any], status: int) -> tuple[int, dict[str, Any]]:
    """(status, body) of the OpenAI-shaped answer for a Banatie error body and status."""
    code = str(body.get("code") or "internal_error")
    status = STATUS_BY_CODE.get(code, status)
    message = str(body.get("message") or body.get("error") or "The request failed.")
    if body.get("hint"):
        message = f"{message} {body['hint']}"  # the message still says how to fix it
    return status, {"error": {"message": message, "type": error_type(status), "param": body.get("field"),
                              "code": code}}
