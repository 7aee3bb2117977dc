"""Prompt enhancement: one function the enhancement job and the generation job share."""
from __future__ import annotations

from typing import Any

from apps.prompts.templates import DEFAULT_TEMPLATE
from workers.providers import get_text_provider


def prompt_enhance(*, prompt: str, template: str | None = None, options: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Rewrite ``prompt`` with the active text provider. Returns the documented
    promptEnhancement object. Raises ProviderError on upstream failures."""
    options = options or {}
    provider = get_text_provider()
    result = provider.enhance(prompt=prompt, template=template or DEFAULT_TEMPLATE, options=options)
    return {
        "originalPrompt": prompt,
        "enhancedPrompt": result.enhanced_prompt,
        "detectedLanguage": result.detected_language,
        "appliedTemplate": result.applied_template,
        "enhancements": result.enhancements,
        "provider": provider.name,
        "model": result.model,
    }


def prompt_enhance_result(*, prompt: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The /api/enhance result (documented shape), stored on the job."""
    options = options or {}
    enhancement = prompt_enhance(prompt=prompt, options=options)
    return {
        "originalPrompt": prompt,
        "enhancedPrompt": enhancement["enhancedPrompt"],
        "detectedLanguage": enhancement["detectedLanguage"],
        "appliedTemplate": enhancement["appliedTemplate"],
        "metadata": {
            "style": options.get("image_style") or enhancement["appliedTemplate"],
            "aspectRatio": options.get("aspect_ratio"),
            "enhancements": enhancement["enhancements"],
            "provider": enhancement["provider"],
            "model": enhancement["model"],
        },
    }
