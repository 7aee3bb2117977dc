"""Provider selection: Gemini when GEMINI_API_KEY is set, the offline provider otherwise.
Read at call time, so a settings change (or a test fixture) takes effect at once."""
from __future__ import annotations

from banatie.health import active_provider_name
from workers.providers.base import ImageProvider, TextProvider

__all__ = ("get_image_provider", "get_text_provider")


def get_text_provider() -> TextProvider:
    if active_provider_name() == "gemini":
        from workers.providers.gemini import GeminiTextProvider

        return GeminiTextProvider.from_settings()
    from workers.providers.offline import OfflineTextProvider

    return OfflineTextProvider()


def get_image_provider() -> ImageProvider:
    if active_provider_name() == "gemini":
        from workers.providers.gemini import GeminiImageProvider

        return GeminiImageProvider.from_settings()
    from workers.providers.offline import OfflineImageProvider

    return OfflineImageProvider()
