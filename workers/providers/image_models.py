"""What the image models accept, as plain facts both providers and both front doors read
(the native API and /v1): image sizes, which models take one, and the OpenAI model names
that stand for the default model."""
from __future__ import annotations

IMAGE_SIZES = ("1K", "2K", "4K")
# Long side in pixels per size class (the offline provider draws at it; Gemini's own sizes).
IMAGE_SIZE_PIXELS = {"1K": 1024, "2K": 2048, "4K": 4096}

# Gemini 2.5 Flash Image has a fixed output size: its API refuses image_config.image_size.
# The 3.x image models take one. Matched by prefix so dated variants (…-preview-09-2025) count.
_FIXED_SIZE_PREFIXES = ("gemini-2.5-flash-image", "gemini-2.0-flash")

# What unmodified OpenAI apps send as `model`: they mean "the default image model".
OPENAI_MODEL_ALIASES = ("dall-e-2", "dall-e-3", "gpt-image-1")


def image_size_supported(model: str) -> bool:
    """Whether ``model`` accepts image_config.image_size."""
    return not model.startswith(_FIXED_SIZE_PREFIXES)
