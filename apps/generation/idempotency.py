"""Idempotency-Key support: what identifies "the same request" (HTTP-level, so the views
compute it) and the header's validation."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from rest_framework.request import Request

from banatie.errors import ApiError

_VALID = re.compile(r"^[\x21-\x7e]{1,255}$")


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


def _read_all(upload) -> bytes:  # type: ignore[no-untyped-def]
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
