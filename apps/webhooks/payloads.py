"""The body of a delivery: ``{"type", "timestamp", "data"}`` with ``data`` the job exactly as
GET /api/jobs/{jobId} renders it (apps.jobs.serializers.JobDetailOutputSerializer), its image
URLs absolute on PUBLIC_BASE_URL since no client request is there to take a host from."""
from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.serializers import JobDetailOutputSerializer
from banatie.timefmt import iso


class PublicBaseRequest(HttpRequest):
    """A request as a client of PUBLIC_BASE_URL sends it, for rendering outside a request:
    build_absolute_uri() answers PUBLIC_BASE_URL's scheme and host. The host is our own
    setting, not a client's header, so it is not checked against ALLOWED_HOSTS."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        parts = urlsplit(base_url)
        self._public_scheme, self._public_host = parts.scheme, parts.netloc
        self.method = "GET"
        self.path = self.path_info = parts.path or "/"

    def _get_scheme(self) -> str:  # Django's hook for subclasses (WSGIRequest overrides it too)
        return self._public_scheme

    def get_host(self) -> str:
        return self._public_host


def event_id_new() -> str:
    """A delivery's ``webhook-id``: "msg_" and 32 hex digits, the same on every attempt."""
    return "msg_" + secrets.token_hex(16)


def event_body(*, event: str, job: Job) -> str:
    """The exact JSON text every attempt of this event sends (and signs)."""
    data = JobDetailOutputSerializer(job, context={"request": PublicBaseRequest(settings.PUBLIC_BASE_URL)}).data
    return json.dumps({"type": event, "timestamp": iso(timezone.now()), "data": data}, separators=(",", ":"))
