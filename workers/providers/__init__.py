"""Provider selection: Gemini when GEMINI_API_KEY is set, the offline provider otherwise.
Read at call time, so a settings change (or a test fixture) takes effect at once."""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from django.conf import settings

from banatie.health import active_provider_name
from workers.providers.base import ImageProvider, TextProvider

__all__ = ("get_image_provider", "get_text_provider", "provider_health")

# The last health answer per configuration, reused for HEALTH_PROVIDER_TTL_SECONDS: /health
# may be polled every second, the upstream call costs quota.
_health_cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
_health_lock = threading.Lock()


def provider_health() -> dict[str, Any]:
    """/health's `provider` check: the offline provider is always up; Gemini is asked."""
    if active_provider_name() != "gemini":
        return {"status": "up", "name": "offline"}
    from workers.providers.gemini import gemini_health

    # The key is part of the cache key only as a digest: a changed key is checked again.
    config = (hashlib.sha256(settings.GEMINI_API_KEY.encode()).hexdigest(), settings.GEMINI_BASE_URL,
              settings.GEMINI_API_VERSION, settings.GEMINI_IMAGE_MODEL)
    now = time.monotonic()
    with _health_lock:
        cached = _health_cache.get(config)
        if cached and cached[0] > now:
            return cached[1]
    answer = gemini_health()
    with _health_lock:
        _health_cache.clear()  # one configuration at a time
        _health_cache[config] = (now + settings.HEALTH_PROVIDER_TTL_SECONDS, answer)
    return answer


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
