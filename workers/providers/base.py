"""The two small interfaces every provider implements, and the errors they raise.

Providers are the outside world: they never touch the database or storage. The task
that calls them turns a ``ProviderError`` into the job's final (or retried) error.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

# The running job's deadline (monotonic seconds), set by the job runner for its thread.
_deadline: ContextVar[float | None] = ContextVar("job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float) -> Iterator[None]:
    """Bound every provider call made inside the block to ``seconds`` in all."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds until the job's deadline, or None outside a job."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


@dataclass(frozen=True)
class ReferenceImage:
    data: bytes
    mime_type: str  # image/png, image/jpeg or image/webp (detected, not declared)


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    description: str  # the model's text part, "" when it sent none
    model: str


@dataclass(frozen=True)
class Enhancement:
    enhanced_prompt: str
    detected_language: str  # ISO 639-1 code, e.g. "en"
    applied_template: str
    enhancements: list[str] = field(default_factory=list)
    model: str = ""


class ProviderError(Exception):
    """A typed provider failure.

    ``code`` is the public error code (``upstream_unavailable``, ``content_blocked``,
    ``no_image_returned``, ``upstream_invalid_response``); ``retryable`` says whether the
    task may try again; ``retry_after`` is the upstream's hint in seconds, if it gave one.
    The message must never contain the API key or the SDK exception's repr.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.details = details or {}


class ImageProvider(Protocol):
    name: str  # "gemini" or "offline"

    def generate(
        self, *, prompt: str, reference_images: list[ReferenceImage], aspect_ratio: str
    ) -> GeneratedImage: ...


class TextProvider(Protocol):
    name: str

    def enhance(self, *, prompt: str, template: str, options: dict) -> Enhancement: ...
