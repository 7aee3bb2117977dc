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

from banatie.errors import InternalError, LengthRequired, PayloadTooLarge, error_response
from banatie.request_context import current_request_id, reset_request_id, set_request_id

logger = logging.getLogger("banatie.request")
access = logging.getLogger("banatie.access")

# A client's id is kept only if it is short and boring, so it is safe in logs and headers.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """X-Request-ID in and out; the id is on every log line of the request, and one access
    line (method, path, route, status, duration) is logged per request, errors included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = set_request_id(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            match = request.resolver_match
            access.info("%s %s %d %.1fms route=%s", request.method, request.path[:300], response.status_code,
                        (time.monotonic() - started) * 1000, match.url_name if match else "-")
            return response
        finally:
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


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True
