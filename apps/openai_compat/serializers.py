"""OpenAI's images request and response bodies (snake_case on the wire, as the `openai`
SDK sends and reads them)."""
from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.generation.serializers import model_field, result_images
from apps.generation.images import OUTPUT_FORMATS as IMAGE_OUTPUT_FORMATS
from apps.generation.services import MAX_IMAGES, image_model_resolve, reference_checked
from apps.generation.storage import storage_read
from apps.jobs.models import Job
from apps.jobs.serializers import prompt_field
from apps.openai_compat.errors import UnsupportedParameter
from apps.openai_compat.services import SIZES
from banatie.serializers import OutputSerializer, StrictCharField, StrictChoiceField, StrictIntegerField, StrictSerializer
from workers.providers.templates import IMAGE_ASPECT_RATIOS

SIZE_RULE = (f"Use one of {', '.join(SIZES)} or an aspect ratio W:H of {', '.join(IMAGE_ASPECT_RATIOS)}.")
OUTPUT_FORMATS = tuple(IMAGE_OUTPUT_FORMATS)  # png, jpeg, webp
CONTENT_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


class _ImagesInputSerializer(StrictSerializer):
    """What generations and edits share. Nulls mean "not sent" (the SDK sends null for an
    explicit None)."""

    prompt = prompt_field(min_length=1, max_length=5000)
    model = model_field(allow_null=True)
    n = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_IMAGES,
                           help_text=f"Images to generate, 1-{MAX_IMAGES} (default 1): one job, n upstream calls at once.")
    size = StrictCharField(required=False, allow_null=True, max_length=20,
                           help_text=f"{SIZE_RULE} Default 1024x1024 (1:1); auto is 1:1.")
    response_format = StrictChoiceField(choices=["url", "b64_json"], required=False, allow_null=True,
                                        help_text="url (default): an absolute /api/images/… URL; b64_json: the bytes.")
    output_format = StrictChoiceField(choices=OUTPUT_FORMATS, required=False, allow_null=True,
                                      help_text="png (default), jpeg or webp; converted with Pillow before storing.")
    quality = StrictCharField(required=False, allow_null=True, max_length=20,
                              help_text="Accepted and ignored, except hd: 2K from models that take an image size.")
    user = StrictCharField(required=False, allow_null=True, max_length=500, help_text="Accepted and ignored.")

    def validate_size(self, value: str | None) -> str | None:
        if value is None or value in SIZES or value in IMAGE_ASPECT_RATIOS:
            return value
        raise serializers.ValidationError(f"Size {value[:20]!r} is not supported. {SIZE_RULE}")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Before the request is charged: an unknown model is refused like any invalid field.
        image_model_resolve(attrs.get("model"))
        size = attrs.pop("size", None) or "1024x1024"
        attrs["aspect_ratio"] = SIZES.get(size, size)
        attrs["n"] = attrs.get("n") or 1
        attrs["output_format"] = attrs.get("output_format") or "png"
        attrs.pop("user", None)
        return attrs


class ImageGenerationInputSerializer(_ImagesInputSerializer):
    style = StrictCharField(required=False, allow_null=True, max_length=20, help_text="Accepted and ignored.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.pop("style", None)
        return super().validate(attrs)


class ImageEditInputSerializer(_ImagesInputSerializer):
    # The SDK sends one file as `image`, several as `image[]`; the view gathers both here.
    image = serializers.ListField(child=serializers.FileField(allow_empty_file=False), min_length=1,
                                  help_text="1-3 PNG, JPEG or WebP images (image or image[]), at most 5 MB each.")
    mask = serializers.FileField(required=False, help_text="Not supported (Gemini has no masks): 400.")

    def validate_image(self, files: list) -> list:
        if len(files) > settings.MAX_UPLOAD_FILES:
            raise serializers.ValidationError(
                f"At most {settings.MAX_UPLOAD_FILES} images are accepted; {len(files)} were sent.")
        return files

    def validate_mask(self, mask: Any) -> Any:
        raise UnsupportedParameter(
            "mask is not supported: Gemini edits the whole image from the prompt and has no masks. "
            "Describe the change in the prompt instead.", field="mask")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        # Checked by content (Pillow) after every field is valid, before anything is charged.
        attrs["files"] = [reference_checked(upload) for upload in attrs.pop("image")]
        return attrs


# --- output -------------------------------------------------------------------------------

class ImageDataOutputSerializer(OutputSerializer):
    omit_when_empty = ("url", "b64_json", "revised_prompt")

    url = serializers.URLField(required=False, help_text="With response_format url (the default).")
    b64_json = serializers.CharField(required=False, help_text="With response_format b64_json: the image bytes.")
    revised_prompt = serializers.CharField(required=False, help_text="When the prompt was rewritten before use.")


class InputTokensDetailsOutputSerializer(OutputSerializer):
    text_tokens = serializers.IntegerField()
    image_tokens = serializers.IntegerField()


class OutputTokensDetailsOutputSerializer(OutputSerializer):
    text_tokens = serializers.IntegerField()
    image_tokens = serializers.IntegerField()


class ImagesUsageOutputSerializer(OutputSerializer):
    input_tokens = serializers.IntegerField()
    input_tokens_details = InputTokensDetailsOutputSerializer()
    output_tokens = serializers.IntegerField()
    output_tokens_details = OutputTokensDetailsOutputSerializer()
    total_tokens = serializers.IntegerField()


class ImagesResponseOutputSerializer(OutputSerializer):
    """Rendered from a succeeded generation job; context: request, response_format."""

    created = serializers.SerializerMethodField(help_text="Unix seconds when the job was created.")
    data = serializers.SerializerMethodField()
    output_format = serializers.SerializerMethodField()
    size = serializers.SerializerMethodField(help_text="The first image's pixels, WxH.")
    usage = serializers.SerializerMethodField(help_text="Summed over the images, from Gemini's usage metadata "
                                                        "(zero from the offline provider).")

    @extend_schema_field(OpenApiTypes.INT)
    def get_created(self, job: Job) -> int:
        return int(job.created_at.timestamp())

    def _items(self, job: Job) -> list[dict[str, Any]]:
        request = self.context["request"]
        revised = (job.result.get("promptEnhancement") or {}).get("enhancedPrompt")
        items = []
        for image in result_images(job.result):
            if self.context.get("response_format") == "b64_json":
                item = {"b64_json": base64.b64encode(storage_read(image["storageKey"])).decode("ascii")}
            else:
                item = {"url": request.build_absolute_uri(f"/api/images/{image['storageKey']}")}
            if revised:
                item["revised_prompt"] = revised
            items.append(item)
        return items

    @extend_schema_field(ImageDataOutputSerializer(many=True))
    def get_data(self, job: Job) -> list[dict[str, Any]]:
        return ImageDataOutputSerializer(self._items(job), many=True).data

    @extend_schema_field({"type": "string", "enum": list(OUTPUT_FORMATS)})
    def get_output_format(self, job: Job) -> str:
        return CONTENT_FORMATS.get(job.result.get("contentType", ""), "png")

    @extend_schema_field(OpenApiTypes.STR)
    def get_size(self, job: Job) -> str:
        return f"{job.result['width']}x{job.result['height']}"

    @extend_schema_field(ImagesUsageOutputSerializer)
    def get_usage(self, job: Job) -> dict[str, Any]:
        usage = job.result.get("usage") or {}
        output, image_output = usage.get("outputTokens", 0), usage.get("imageOutputTokens", 0)
        return ImagesUsageOutputSerializer({
            "input_tokens": usage.get("inputTokens", 0),
            "input_tokens_details": {"text_tokens": usage.get("inputTextTokens", 0),
                                     "image_tokens": usage.get("inputImageTokens", 0)},
            "output_tokens": output,
            "output_tokens_details": {"text_tokens": output - image_output, "image_tokens": image_output},
            "total_tokens": usage.get("totalTokens", 0),
        }).data


class ModelOutputSerializer(OutputSerializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["model"])
    created = serializers.IntegerField(help_text="Always 0: Gemini does not say when a model was released.")
    owned_by = serializers.CharField()


class ModelListOutputSerializer(OutputSerializer):
    object = serializers.ChoiceField(choices=["list"])
    data = ModelOutputSerializer(many=True)
