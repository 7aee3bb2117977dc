from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.generation.services import MAX_IMAGES, image_model_resolve, image_size_checked, reference_checked
from apps.jobs.models import Job
from apps.jobs.serializers import StyleOptionsSerializer, prompt_field, usage_field
from banatie.serializers import (
    JsonObjectField, OutputSerializer, StrictBooleanField, StrictCharField, StrictChoiceField, StrictIntegerField,
    StrictSerializer,
)
from workers.providers.image_models import IMAGE_SIZES, OPENAI_MODEL_ALIASES
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


class ImageModelField(StrictCharField):
    """A model name; checked by image_model_resolve (its error lists the allowed ones). In
    the schema: an enum of what GEMINI_IMAGE_MODELS allows now, plus the OpenAI aliases."""


class ImageModelFieldSchema(OpenApiSerializerFieldExtension):
    target_class = ImageModelField

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        schema: dict[str, Any] = {"type": "string", "enum": [*settings.GEMINI_IMAGE_MODELS, *OPENAI_MODEL_ALIASES]}
        if self.target.allow_null:
            schema["nullable"] = True
        return schema


def model_field(**kwargs: Any) -> ImageModelField:
    return ImageModelField(
        required=False, max_length=100, **kwargs,
        help_text="An image model from GEMINI_IMAGE_MODELS (GET /v1/models lists them); default: the first. "
                  "dall-e-2, dall-e-3 and gpt-image-1 mean the default model.")


def image_size_field() -> StrictChoiceField:
    return StrictChoiceField(
        choices=IMAGE_SIZES, required=False, source="image_size",
        help_text="Output size class (Gemini's image_config.image_size); default: the model's own. "
                  "Models with a fixed size (gemini-2.5-flash-image) refuse it: 400 image_size_unsupported.")


def images_count_field() -> StrictIntegerField:
    return StrictIntegerField(
        required=False, default=1, min_value=1, max_value=MAX_IMAGES,
        help_text=f"How many images (1-{MAX_IMAGES}): one upstream call each, run at once, in one job; the job "
                  "succeeds only if every image did.")


class ImageOptionsMixin:
    """model / imageSize checked once every field is valid, before the request is charged."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["model"] = image_model_resolve(attrs.get("model"))
        image_size_checked(model=attrs["model"], image_size=attrs.get("image_size"))
        return super().validate(attrs)  # type: ignore[misc]


class MetaSerializer(StrictSerializer):
    tags = serializers.ListField(child=StrictCharField(max_length=50), max_length=20, required=False)


class TextToImageInputSerializer(ImageOptionsMixin, StrictSerializer):
    prompt = prompt_field(min_length=3, max_length=2000)
    filename = filename_field()
    aspectRatio = StrictChoiceField(choices=IMAGE_ASPECT_RATIOS, required=False, default="1:1", source="aspect_ratio")
    autoEnhance = StrictBooleanField(required=False, default=True, source="auto_enhance")
    enhancementOptions = EnhancementOptionsSerializer(required=False, source="enhancement_options")
    # Its tags are merged into the validated data (source="*"): tags=[...].
    meta = MetaSerializer(required=False, source="*")
    model = model_field()
    imageSize = image_size_field()
    n = images_count_field()


class GenerateInputSerializer(ImageOptionsMixin, StrictSerializer):
    prompt = prompt_field(min_length=1, max_length=5000)
    filename = filename_field()
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False), required=False, default=list,
    )
    aspectRatio = StrictChoiceField(choices=IMAGE_ASPECT_RATIOS, required=False, default="1:1", source="aspect_ratio")
    autoEnhance = StrictBooleanField(required=False, default=False, source="auto_enhance")
    enhancementOptions = JsonObjectField(EnhancementOptionsSerializer, required=False, source="enhancement_options")
    model = model_field()
    imageSize = image_size_field()
    n = images_count_field()

    def validate_files(self, files: list) -> list:
        if len(files) > settings.MAX_UPLOAD_FILES:
            raise serializers.ValidationError(
                f"At most {settings.MAX_UPLOAD_FILES} reference images are accepted; {len(files)} were sent."
            )
        return files

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Once every field is valid: what each file really is (Pillow), so a refused image
        # is refused before the request is charged or anything is stored.
        attrs = super().validate(attrs)
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


class GeneratedImageOutputSerializer(OutputSerializer):
    filename = serializers.CharField(help_text="The name you asked for (with -1, -2, ... when n > 1) and extension.")
    filepath = serializers.CharField(source="storageKey")
    url = serializers.SerializerMethodField(help_text="Absolute URL of the image (GET /api/images/<filepath>).")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    contentType = serializers.ChoiceField(choices=["image/png", "image/jpeg", "image/webp"])
    description = serializers.CharField(allow_blank=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, image: dict[str, Any]) -> str:
        return self.context["request"].build_absolute_uri(f"/api/images/{image['storageKey']}")


def result_images(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every image of a generation result; a result stored before `images` existed is one."""
    return result.get("images") or [result]


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
    images = serializers.SerializerMethodField(
        help_text="Every image of the job (n of them; the fields above repeat the first).")

    @extend_schema_field(GeneratedImageOutputSerializer(many=True))
    def get_images(self, job: Job) -> list[dict[str, Any]]:
        return GeneratedImageOutputSerializer(result_images(job.result), many=True, context=self.context).data

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
