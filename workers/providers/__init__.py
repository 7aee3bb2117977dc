"""Provider selection: Gemini when GEMINI_API_KEY is set, the offline provider otherwise.
Read at call time, so a settings change (or a test fixture) takes effect at once."""
from __future__ import annotations

from django.conf import settings

from workers.providers.base import ImageProvider, TextProvider


def active_provider_name() -> str:
    return "gemini" if settings.GEMINI_API_KEY else "offline"


def get_text_provider() -> TextProvider:
    if settings.GEMINI_API_KEY:
        from workers.providers.gemini import GeminiTextProvider

        return GeminiTextProvider.from_settings()
    from workers.providers.offline import OfflineTextProvider

    return OfflineTextProvider()


def get_image_provider() -> ImageProvider:
    if settings.GEMINI_API_KEY:
        from workers.providers.gemini import GeminiImageProvider

        return GeminiImageProvider.from_settings()
    from workers.providers.offline import OfflineImageProvider

    return OfflineImageProvider()
