from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.generation.models import Job
from apps.prompts.serializers import EnhancementOptionsSerializer, PromptEnhancementOutputSerializer, prompt_field
from apps.prompts.templates import IMAGE_ASPECT_RATIOS
from banatie.serializers import (
    StrictBooleanField, StrictCharField, StrictChoiceField, StrictSerializer,
)

FILENAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"


def filename_field() -> StrictCharField:
    return StrictCharField(
        max_length=100, validators=[RegexValidator(FILENAME_PATTERN)],
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


@extend_schema_field({"type": "string", "description": "A JSON object as text, e.g. {\"template\": \"comic\"}."})
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


# --- response shapes -------------------------------------------------------------------

class GenerationDataOutputSerializer(serializers.Serializer):
    filename = serializers.CharField(help_text="The name you asked for, with the image's extension.")
    filepath = serializers.CharField(help_text="The storage key: <project>/<yyyy>/<mm>/<random>-<filename>.<ext>.")
    url = serializers.URLField(help_text="Absolute URL of the image (GET /api/images/<filepath>).")
    description = serializers.CharField(allow_blank=True, help_text="The model's text about the image.")
    model = serializers.CharField()
    generatedAt = serializers.DateTimeField()
    jobId = serializers.UUIDField()
    provider = serializers.ChoiceField(choices=["gemini", "offline"])
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    contentType = serializers.ChoiceField(choices=["image/png", "image/jpeg", "image/webp"])
    promptEnhancement = PromptEnhancementOutputSerializer(required=False, help_text="Present when autoEnhance ran.")


class GenerationOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    data = GenerationDataOutputSerializer()


class JobAcceptedOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    jobId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Job.Status.values)
    statusUrl = serializers.CharField()


class JobErrorOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.IntegerField(help_text="The HTTP status the synchronous call answered with.")
    error = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)
    retryAfter = serializers.IntegerField(required=False)


class JobDetailOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    jobId = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Job.Kind.values)
    status = serializers.ChoiceField(choices=Job.Status.values)
    attempts = serializers.IntegerField()
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    finishedAt = serializers.DateTimeField(allow_null=True)
    statusUrl = serializers.CharField()
    data = serializers.DictField(
        required=False, help_text="When succeeded: the `data` of /api/text-to-image and /api/generate, or the "
                                  "/api/enhance result."
    )
    error = JobErrorOutputSerializer(required=False)
