from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.prompts.templates import ENHANCE_ASPECT_RATIOS, OUTPUT_FORMATS, TEMPLATES
from banatie.serializers import StrictCharField, StrictChoiceField, StrictSerializer

PROMPT_REQUIRED = {"required": "Prompt is required", "blank": "Prompt is required", "null": "Prompt is required"}


def prompt_field(*, min_length: int, max_length: int) -> StrictCharField:
    return StrictCharField(
        min_length=min_length, max_length=max_length, trim_whitespace=True,
        error_messages={
            **PROMPT_REQUIRED,
            "min_length": f"Prompt must be at least {min_length} characters.",
            "max_length": f"Prompt must be at most {max_length} characters.",
        },
    )


class _StyleOptionsSerializer(StrictSerializer):
    """Options shared by /api/enhance `options` and the generate endpoints' enhancementOptions."""

    mood = StrictCharField(required=False, allow_blank=True, max_length=200)
    lighting = StrictCharField(required=False, allow_blank=True, max_length=200)
    cameraAngle = StrictCharField(required=False, allow_blank=True, max_length=200)
    outputFormat = StrictChoiceField(choices=OUTPUT_FORMATS, required=False)
    negativePrompts = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=20,
    )


class EnhanceOptionsSerializer(_StyleOptionsSerializer):
    imageStyle = StrictChoiceField(choices=TEMPLATES, required=False)
    aspectRatio = StrictChoiceField(choices=ENHANCE_ASPECT_RATIOS, required=False)


class EnhancementOptionsSerializer(_StyleOptionsSerializer):
    template = StrictChoiceField(choices=TEMPLATES, required=False)


def options_to_python(options: dict[str, Any]) -> dict[str, Any]:
    """camelCase wire options → the snake_case keys providers take (template excluded)."""
    names = {
        "imageStyle": "image_style", "aspectRatio": "aspect_ratio", "mood": "mood", "lighting": "lighting",
        "cameraAngle": "camera_angle", "outputFormat": "output_format", "negativePrompts": "negative_prompts",
    }
    return {names[k]: v for k, v in options.items() if k in names}


class EnhanceInputSerializer(StrictSerializer):
    prompt = prompt_field(min_length=1, max_length=5000)
    options = EnhanceOptionsSerializer(required=False)


# --- response shapes -------------------------------------------------------------------

class PromptEnhancementOutputSerializer(serializers.Serializer):
    originalPrompt = serializers.CharField()
    enhancedPrompt = serializers.CharField()
    detectedLanguage = serializers.CharField()
    appliedTemplate = serializers.CharField()
    enhancements = serializers.ListField(child=serializers.CharField())
    provider = serializers.CharField()
    model = serializers.CharField()


class EnhanceMetadataOutputSerializer(serializers.Serializer):
    style = serializers.CharField()
    aspectRatio = serializers.CharField(allow_null=True)
    enhancements = serializers.ListField(child=serializers.CharField())
    provider = serializers.CharField()
    model = serializers.CharField()


class EnhanceResultOutputSerializer(serializers.Serializer):
    originalPrompt = serializers.CharField()
    enhancedPrompt = serializers.CharField()
    detectedLanguage = serializers.CharField()
    appliedTemplate = serializers.CharField()
    metadata = EnhanceMetadataOutputSerializer()


class EnhanceOutputSerializer(EnhanceResultOutputSerializer):
    success = serializers.BooleanField()
    jobId = serializers.UUIDField()
