"""Request-wide behaviour done once for every route."""
from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import ResolverMatch

from banatie.errors import InternalError, LengthRequired, PayloadTooLarge, error_response
from banatie.request_context import (
    current_log_fields, current_request_id, log_fields_end, log_fields_start, reset_request_id, set_request_id,
)

logger = logging.getLogger("banatie.request")
access = logging.getLogger("banatie.access")

# A client's id is kept only if it is short and boring, so it is safe in logs and headers.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """X-Request-ID in and out; the id (and the key prefix, project and job once known) is
    on every log line of the request, and one access line (method, route pattern, status,
    duration; never the raw path with its ids) is logged per request, errors included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = set_request_id(request_id)
        fields = log_fields_start()
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            match = request.resolver_match
            route, name = route_of(match), (match.url_name if match else None) or "-"
            duration = round((time.monotonic() - started) * 1000, 1)
            access.info("%s %s %d %.1fms route=%s", request.method, route, response.status_code, duration, name,
                        extra={"method": request.method, "route": route, "status": response.status_code,
                               "durationMs": duration, "routeName": name})
            return response
        finally:
            log_fields_end(fields)
            reset_request_id(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # Non-DRF views (admin, schema UI) end up here; DRF views have their own handler.
        if isinstance(exception, (Http404, PermissionDenied, SuspiciousOperation)):
            return None  # Django answers these through our JSON handler404/403/400
        logger.error("unhandled error", exc_info=exception)
        response = error_response(InternalError())
        response["X-Request-ID"] = current_request_id()
        return response


class BodySizeLimitMiddleware:
    """Refuse an oversized body from its Content-Length, before reading a byte of it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.MAX_REQUEST_BYTES
        if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # WSGI hands Django no chunked body: refuse loudly instead of reading it as empty.
            return error_response(LengthRequired())
        if length > limit:
            return error_response(
                PayloadTooLarge(
                    f"The request body is {length} bytes; the limit is {limit} bytes "
                    f"({settings.MAX_UPLOAD_FILES} files of at most "
                    f"{settings.MAX_UPLOAD_FILE_BYTES // (1024 * 1024)} MB each plus fields).",
                    details={"received": length, "limit": limit},
                )
            )
        return self.get_response(request)


_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def route_of(match: ResolverMatch | None) -> str:
    """The matched route as a pattern (``/api/jobs/{jobId}``): the same for every id, so
    access lines group by endpoint; "unmatched" for the JSON 404 of unknown paths."""
    if match is None or match.url_name == "not-found":
        return "unmatched"
    pattern = _GROUP.sub(lambda m: "{" + m.group(1) + "}", match.route)
    return "/" + pattern.strip("^$").removesuffix("/?").lstrip("^")


class RequestIdLogFilter(logging.Filter):
    """Puts the request context on the record: the text format shows the request id, the
    JSON format every field (banatie.logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        fields = current_log_fields()
        record.job_id, record.key_prefix, record.project_id = fields.job_id, fields.key_prefix, fields.project_id
        return True
