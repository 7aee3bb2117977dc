"""Every non-2xx answer Banatie gives, and the one place that renders it.

Body shape (see docs/errors.md):
    {"success": false, "message": "...", "error": "...", "code": "snake_case",
     "requestId": "...", "field"?: "...", "hint"?: "...", "details"?: {...}}

``error`` keeps the wording of the original API's "Common Error Messages" so existing
clients keep matching it; ``code`` is the precise, stable reason for programs.
Services raise ``ApiError`` subclasses; views never build error bodies.
"""
from __future__ import annotations

import difflib
import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    DisallowedHost, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions as drf
from rest_framework.response import Response

from banatie.request_context import current_request_id

logger = logging.getLogger("banatie.errors")


class ApiError(drf.APIException):
    """Base of every error Banatie reports. Subclasses set status, code, error, hint."""

    status_code = 400
    code = "bad_request"
    error = "Bad request"
    default_message = "The request could not be processed."
    hint = ""

    def __init__(
        self,
        message: str | None = None,
        *,
        hint: str | None = None,
        field: str | None = None,
        details: dict | None = None,
        error: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        if hint is not None:
            self.hint = hint
        if error is not None:
            self.error = error
        self.field = field
        self.details = details
        self.headers = dict(headers or {})
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "success": False,
            "message": self.message,
            "error": self.error,
            "code": self.code,
            "requestId": current_request_id(),
        }
        if self.field:
            body["field"] = self.field
        if self.hint:
            body["hint"] = self.hint
        if self.details:
            body["details"] = self.details
        body.update(self.extra)
        return body


class ValidationFailed(ApiError):
    status_code = 400
    code = "validation_failed"
    error = "Validation failed"
    default_message = "Validation failed."


class InvalidJson(ApiError):
    status_code = 400
    code = "invalid_json"
    error = "Validation failed"
    default_message = "The request body is not valid JSON."
    hint = "Send a JSON object, e.g. {\"prompt\": \"...\"}, with Content-Type: application/json."


class InvalidMultipart(ApiError):
    status_code = 400
    code = "invalid_multipart"
    error = "Validation failed"
    default_message = "The multipart/form-data body could not be parsed."
    hint = "Let your HTTP client build the multipart body (curl -F field=value -F files=@image.png); do not set the boundary by hand."


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"
    error = "Unsupported media type"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"
    error = "Payload too large"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"
    error = "Not found"
    default_message = "Not found."


class RouteNotFound(NotFound):
    code = "route_not_found"
    default_message = "No route matches this path."


class MethodNotAllowed(ApiError):
    status_code = 405
    code = "method_not_allowed"
    error = "Method not allowed"


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"
    error = "Forbidden"
    default_message = "You are not allowed to do this."


class NotAcceptable(ApiError):
    status_code = 406
    code = "not_acceptable"
    error = "Not acceptable"
    default_message = ("This API only answers application/json (and image bytes on /api/images, "
                       "text/event-stream on /api/jobs/{id}/events).")
    hint = "Send Accept: application/json or */*, or leave the Accept header out."


class BadRequest(ApiError):
    status_code = 400
    code = "bad_request"
    error = "Bad request"
    default_message = "The request could not be processed."


class MalformedRequest(ApiError):
    """Written by the web server itself (banatie/gunicorn_worker.py): Django never saw it."""
    status_code = 400
    code = "malformed_request"
    error = "Malformed request"
    default_message = "The HTTP request could not be parsed."
    hint = ("Check the request line and headers: one Content-Type header, no spaces or control characters in "
            "header names, header lines under 8 KB. Most HTTP client libraries never send such a request.")


class LengthRequired(ApiError):
    status_code = 411
    code = "length_required"
    error = "Length required"
    default_message = "Chunked request bodies are not supported; the body was not read."
    hint = "Send the body with a Content-Length header (curl does this unless told to chunk)."


class HostNotAllowed(ApiError):
    status_code = 400
    code = "host_not_allowed"
    error = "Bad request"
    hint = "Operators: add this host to ALLOWED_HOSTS (comma-separated); clients: use the server's configured name."

    @classmethod
    def for_request(cls, request: HttpRequest) -> HostNotAllowed:
        # The raw Host header is not a secret; it is shown so the operator can allow it.
        host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
        return cls(f"The Host header {host[:200]!r} is not in ALLOWED_HOSTS.", details={"host": host[:200]})


class InternalError(ApiError):
    status_code = 500
    code = "internal_error"
    error = "Internal server error"
    default_message = "Something went wrong on our side."
    hint = "Retry later; if it persists, report the requestId to the operator."


def error_response(exc: ApiError) -> JsonResponse:
    """Render an ApiError outside DRF (middleware, Django's own handlers)."""
    response = JsonResponse(exc.body(), status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _flatten(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """DRF's nested error dict → [("enhancementOptions.template", "message"), ...]."""
    if isinstance(detail, dict):
        out: list[tuple[str, str]] = []
        for key, value in detail.items():
            if isinstance(key, int):  # ListField item errors come keyed by index
                out += _flatten(value, f"{prefix}[{key}]")
                continue
            name = str(key) if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            out += _flatten(value, path)
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                out += _flatten(value, f"{prefix}[{index}]")
            else:
                out += _flatten(value, prefix)
        return out
    return [(prefix, str(detail))]


def validation_error(exc: drf.ValidationError) -> ValidationFailed:
    items = _flatten(exc.detail)
    if not items:
        return ValidationFailed()
    field, message = items[0]
    details: dict[str, list[str]] = {}
    for name, text in items:
        details.setdefault(name or "body", []).append(text)
    summary = "; ".join(f"{name}: {text}" if name else text for name, text in items)
    return ValidationFailed(
        summary,
        error=f"Validation failed: {message}",
        field=field or None,
        details=details,
        hint="Fix the fields listed in details and send the request again.",
    )


def translate(exc: Exception, context: dict | None = None) -> ApiError:
    """Map any exception raised while handling a request to an ApiError."""
    view = (context or {}).get("view")
    request = (context or {}).get("request")
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, drf.ValidationError):
        return validation_error(exc)
    if isinstance(exc, drf.ParseError):
        if request is not None and "multipart" in (request.content_type or ""):
            return InvalidMultipart(f"The multipart body could not be parsed: {exc.detail}")
        return InvalidJson(f"The request body could not be parsed: {exc.detail}")
    if isinstance(exc, drf.UnsupportedMediaType):
        accepted = [p.media_type for p in view.get_parsers()] if view else []
        received = (request.content_type if request is not None else "") or "nothing"
        return UnsupportedMediaType(
            f"Content-Type {received!r} is not accepted here; send one of: {', '.join(accepted)}.",
            hint="Set the Content-Type header to match the body you send.",
            details={"received": received, "accepted": accepted},
        )
    if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent)):
        return PayloadTooLarge("The request body is larger than this server accepts.")
    if isinstance(exc, TooManyFilesSent):
        return ValidationFailed("Too many files in one request; send at most 3 reference images.", field="files")
    if isinstance(exc, DisallowedHost) and request is not None:
        return HostNotAllowed.for_request(request)
    if isinstance(exc, SuspiciousOperation):
        return BadRequest("The request was malformed.")
    if isinstance(exc, drf.MethodNotAllowed):
        allowed = list(view.allowed_methods) if view else []
        method = request.method if request is not None else "?"
        return MethodNotAllowed(
            f"Method {method} is not allowed here; allowed: {', '.join(allowed)}.",
            details={"allowed": allowed},
            headers={"Allow": ", ".join(allowed)},
        )
    if isinstance(exc, (drf.NotFound, Http404)):
        return NotFound()
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return Forbidden()
    if isinstance(exc, drf.NotAcceptable):
        return NotAcceptable()
    if isinstance(exc, drf.APIException):
        # No other DRF exception is raised by our views; keep its words, not its code.
        return BadRequest(str(exc.detail))
    logger.error("unhandled error", exc_info=exc)
    return InternalError()


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: the single place an error body is built. As DRF's own
    handler does, an error rolls back the request's atomic block (ATOMIC_REQUESTS)."""
    # Imported here: rest_framework.views resolves the authentication classes (apps.keys,
    # whose errors import this module) when it is first imported.
    from rest_framework.views import set_rollback

    err = translate(exc, context)
    set_rollback()
    response = Response(err.body(), status=err.status_code)
    for name, value in err.headers.items():
        response[name] = value
    return response


def closest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


# Django's own handlers (urls.py points at these): JSON even when DRF is not involved.
def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        return error_response(HostNotAllowed.for_request(request))
    return error_response(BadRequest("The request was malformed."))


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(Forbidden())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/admin/"):
        # The admin is a set of HTML pages for people: its 404 is one of them.
        return page_not_found(request, exception or Http404())
    return error_response(NotFound())


def handler500(request: HttpRequest) -> JsonResponse:
    return error_response(InternalError())
