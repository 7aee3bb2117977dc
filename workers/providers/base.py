"""The two small interfaces every provider implements and the values they return.

Providers are the outside world: they never touch the database or storage. They fail by
raising the jobs core's JobError subclasses (apps.jobs.errors), which the job stores as
its outcome; retryable ones are retried first (workers.providers.retries).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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


class ImageProvider(Protocol):
    name: str  # "gemini" or "offline"

    def generate(
        self, *, prompt: str, reference_images: list[ReferenceImage], aspect_ratio: str
    ) -> GeneratedImage: ...


class TextProvider(Protocol):
    name: str

    def enhance(self, *, prompt: str, template: str | None, options: dict) -> Enhancement: ...
