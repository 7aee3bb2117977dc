from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.prompts.serializers import EnhancementOptionsSerializer, prompt_field
from apps.prompts.templates import IMAGE_ASPECT_RATIOS
from banatie.serializers import (
    StrictBooleanField, StrictCharField, StrictChoiceField, StrictSerializer,
)

FILENAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"


def filename_field() -> serializers.RegexField:
    return serializers.RegexField(
        FILENAME_PATTERN, max_length=100,
        error_messages={
            "invalid": "Use 1-100 letters, digits, '_' or '-' (no dots, slashes or spaces); "
                       "the extension is added for you.",
            "required": "filename is required.", "blank": "filename is required.",
            "max_length": "filename must be at most 100 characters.",
        },
    )


class MetaSerializer(StrictSerializer):
    tags = serializers.ListField(child=StrictCharField(max_length=50), max_length=20, required=False)


class TextToImageInputSerializer(StrictSerializer):
    prompt = prompt_field(min_length=3, max_length=2000)
    filename = filename_field()
    aspectRatio = StrictChoiceField(choices=IMAGE_ASPECT_RATIOS, required=False, default="1:1")
    autoEnhance = StrictBooleanField(required=False, default=True)
    enhancementOptions = EnhancementOptionsSerializer(required=False)
    meta = MetaSerializer(required=False)


class JsonObjectField(serializers.Field):
    """A multipart form field holding a JSON object, validated by ``serializer``."""

    default_error_messages = {"invalid": "Expected a JSON object in this form field, e.g. {{\"template\": \"photorealistic\"}}: {error}."}

    def __init__(self, serializer: type[serializers.Serializer], **kwargs: Any) -> None:
        self.inner = serializer
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError as exc:
                self.fail("invalid", error=str(exc))
        if not isinstance(data, dict):
            self.fail("invalid", error="not an object")
        inner = self.inner(data=data)
        inner.is_valid(raise_exception=True)
        return dict(inner.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value


class GenerateInputSerializer(StrictSerializer):
    prompt = prompt_field(min_length=1, max_length=5000)
    filename = filename_field()
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False), required=False, default=list,
    )
    aspectRatio = StrictChoiceField(choices=IMAGE_ASPECT_RATIOS, required=False, default="1:1")
    autoEnhance = StrictBooleanField(required=False, default=False)
    enhancementOptions = JsonObjectField(EnhancementOptionsSerializer, required=False)

    def validate_files(self, files: list) -> list:
        if len(files) > settings.MAX_UPLOAD_FILES:
            raise serializers.ValidationError(
                f"At most {settings.MAX_UPLOAD_FILES} reference images are accepted; {len(files)} were sent."
            )
        return files
