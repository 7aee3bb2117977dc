"""Idempotency-Key support: what identifies "the same request" (HTTP-level, so the views
compute it) and the header's validation."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from rest_framework.request import Request

from apps.jobs.errors import IdempotencyKeyInvalid

_VALID = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Idempotency:
    key: str
    fingerprint: str  # sha256 of endpoint + body (+ uploaded file digests)


def request_fingerprint(request: Request) -> str:
    """Key order and multipart boundaries do not matter; content does."""
    if hasattr(request.data, "lists"):  # multipart/form
        fields = {name: values for name, values in request.data.lists() if name not in request.FILES}
        files = {
            name: [hashlib.sha256(_read_all(f)).hexdigest() for f in request.FILES.getlist(name)]
            for name in request.FILES
        }
        body: object = {"fields": fields, "files": files}
    else:
        body = request.data
    canonical = json.dumps({"path": request.path.rstrip("/"), "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_all(upload: Any) -> bytes:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


def idempotency_from(request: Request) -> Idempotency | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not _VALID.match(raw):
        raise IdempotencyKeyInvalid(
            f"The Idempotency-Key header must be 1-255 visible ASCII characters; got {len(raw)} characters."
        )
    return Idempotency(key=raw, fingerprint=request_fingerprint(request))
