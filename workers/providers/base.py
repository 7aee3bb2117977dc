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
class Usage:
    """What one upstream call consumed, from Gemini's usage_metadata (the offline provider
    reports zeros). Stored per image in the job's result (``as_dict``), so callers can sum it."""

    input_tokens: int = 0  # prompt_token_count
    input_text_tokens: int = 0  # TEXT entries of prompt_tokens_details (all input when none are sent)
    input_image_tokens: int = 0  # IMAGE entries of prompt_tokens_details (reference images)
    output_tokens: int = 0  # candidates_token_count
    # IMAGE entries of candidates_tokens_details; all output tokens of an image call when absent.
    image_output_tokens: int = 0
    total_tokens: int = 0  # total_token_count

    def as_dict(self) -> dict[str, int]:
        return {"inputTokens": self.input_tokens, "inputTextTokens": self.input_text_tokens,
                "inputImageTokens": self.input_image_tokens, "outputTokens": self.output_tokens,
                "imageOutputTokens": self.image_output_tokens, "totalTokens": self.total_tokens}


NO_USAGE = Usage()


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    description: str  # the model's text part, "" when it sent none
    model: str
    usage: Usage = NO_USAGE


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
        self, *, prompt: str, reference_images: list[ReferenceImage], aspect_ratio: str,
        model: str | None = None, image_size: str | None = None,
    ) -> GeneratedImage:
        """One image. ``model``: one of GEMINI_IMAGE_MODELS (None: the default);
        ``image_size``: "1K", "2K" or "4K" (None: the model's own default)."""
        ...


class TextProvider(Protocol):
    name: str

    def enhance(self, *, prompt: str, template: str | None, options: dict) -> Enhancement: ...
