"""Provider selection: Gemini when GEMINI_API_KEY is set, the offline provider otherwise."""
from __future__ import annotations

from django.conf import settings


def active_provider_name() -> str:
    return "gemini" if settings.GEMINI_API_KEY else "offline"
