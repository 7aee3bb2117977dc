from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.generation.services import reference_checked
from apps.jobs.models import Job
from apps.jobs.serializers import StyleOptionsSerializer, prompt_field, usage_field
from banatie.serializers import (
    JsonObjectField, OutputSerializer, StrictBooleanField, StrictCharField, StrictChoiceField, StrictSerializer,
)
from workers.providers.templates import IMAGE_ASPECT_RATIOS, TEMPLATES

FILENAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
FILENAME_RULE = ("Use 1-100 letters, digits, '_' or '-' (no dots, slashes or spaces); "
                 "the extension is added for you.")


def filename_suggestion(value: str) -> str:
    """What the caller probably meant: no extension, other characters as '-'."""
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", value.strip())
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9_-]", "-", stem)).strip("-")[:100]


class FilenameValidator(RegexValidator):
    """FILENAME_PATTERN (a RegexValidator, so the OpenAPI schema shows the pattern), with a
    message that says the rule and suggests a name that follows it."""

    def __init__(self) -> None:
        super().__init__(FILENAME_PATTERN)

    def __call__(self, value: str) -> None:
        if not self.regex.match(str(value)):
            suggestion = filename_suggestion(str(value))
            raise serializers.ValidationError(
                f"{str(value)[:100]!r} is not allowed. {FILENAME_RULE}" + (f" Try {suggestion!r}." if suggestion else ""))


def filename_field() -> StrictCharField:
    return StrictCharField(
        max_length=100, validators=[FilenameValidator()],
        error_messages={
            "required": "filename is required.", "blank": "filename is required.",
            "max_length": "filename must be at most 100 characters.",
        },
    )


class EnhancementOptionsSerializer(StyleOptionsSerializer):
    """Options shared by /api/enhance `options` and the generate endpoints' enhancementOptions."""

    template = StrictChoiceField(choices=TEMPLATES, required=False)


class MetaSerializer(StrictSerializer):
    tags = serializers.ListField(child=StrictCharField(max_length=50), max_length=20, required=False)


class TextToImageInputSerializer(StrictSerializer):
    prompt = prompt_field(min_length=3, max_length=2000)
    filename = filename_field()
    aspectRatio = StrictChoiceField(choices=IMAGE_ASPECT_RATIOS, required=False, default="1:1", source="aspect_ratio")
    autoEnhance = StrictBooleanField(required=False, default=True, source="auto_enhance")
    enhancementOptions = EnhancementOptionsSerializer(required=False, source="enhancement_options")
    # Its tags are merged into the validated data (source="*"): tags=[...].
    meta = MetaSerializer(required=False, source="*")


class GenerateInputSerializer(StrictSerializer):
    prompt = prompt_field(min_length=1, max_length=5000)
    filename = filename_field()
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False), required=False, default=list,
    )
    aspectRatio = StrictChoiceField(choices=IMAGE_ASPECT_RATIOS, required=False, default="1:1", source="aspect_ratio")
    autoEnhance = StrictBooleanField(required=False, default=False, source="auto_enhance")
    enhancementOptions = JsonObjectField(EnhancementOptionsSerializer, required=False, source="enhancement_options")

    def validate_files(self, files: list) -> list:
        if len(files) > settings.MAX_UPLOAD_FILES:
            raise serializers.ValidationError(
                f"At most {settings.MAX_UPLOAD_FILES} reference images are accepted; {len(files)} were sent."
            )
        return files

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Once every field is valid: what each file really is (Pillow), so a refused image
        # is refused before the request is charged or anything is stored.
        attrs["files"] = [reference_checked(upload) for upload in attrs.get("files", [])]
        return attrs


# --- output: rendered from the generation job (its stored result) ------------------------

class PromptEnhancementOutputSerializer(OutputSerializer):
    originalPrompt = serializers.CharField()
    enhancedPrompt = serializers.CharField()
    detectedLanguage = serializers.CharField()
    appliedTemplate = serializers.CharField()
    enhancements = serializers.ListField(child=serializers.CharField())
    provider = serializers.CharField()
    model = serializers.CharField()


class GenerationDataOutputSerializer(OutputSerializer):
    omit_when_empty = ("promptEnhancement",)
    omit_when_none = ("usage",)

    filename = serializers.CharField(source="result.filename",
                                     help_text="The name you asked for, with the image's extension.")
    filepath = serializers.CharField(source="result.storageKey",
                                     help_text="The storage key: <project>/<yyyy>/<mm>/<random>-<filename>.<ext>.")
    url = serializers.SerializerMethodField(help_text="Absolute URL of the image (GET /api/images/<filepath>).")
    description = serializers.CharField(source="result.description", allow_blank=True,
                                        help_text="The model's text about the image.")
    model = serializers.CharField(source="result.model")
    generatedAt = serializers.DateTimeField(source="result.generatedAt")
    jobId = serializers.UUIDField(source="id")
    provider = serializers.ChoiceField(source="result.provider", choices=["gemini", "offline"])
    width = serializers.IntegerField(source="result.width")
    height = serializers.IntegerField(source="result.height")
    contentType = serializers.ChoiceField(source="result.contentType",
                                          choices=["image/png", "image/jpeg", "image/webp"])
    promptEnhancement = PromptEnhancementOutputSerializer(source="result.promptEnhancement", required=False,
                                                          help_text="Present when autoEnhance ran.")
    usage = usage_field()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job: Job) -> str:
        return self.context["request"].build_absolute_uri(f"/api/images/{job.result['storageKey']}")


class GenerationOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()
    data = GenerationDataOutputSerializer(source="*")

    def get_success(self, job: Job) -> bool:
        return True

    def get_message(self, job: Job) -> str:
        return "Image generated successfully"
