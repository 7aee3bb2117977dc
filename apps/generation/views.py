from __future__ import annotations

import hashlib

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.generation.errors import ImageNotFound
from apps.generation.serializers import GenerateInputSerializer, GenerationOutputSerializer, TextToImageInputSerializer
from apps.generation.services import generation_create
from apps.generation.storage import SERVABLE_KEY, content_type_for
from apps.jobs.options import job_options_from
from apps.jobs.responders import respond_with_job
from apps.jobs.serializers import JobAcceptedOutputSerializer
from apps.jobs.views import JobCreateView
from banatie.openapi import CANCEL_AFTER, IDEMPOTENCY_KEY, JOB_ENDPOINT_ERRORS, PREFER, errors
from banatie.serializers import StrictSerializer

_GENERATION_RESPONSES = {200: GenerationOutputSerializer, 202: JobAcceptedOutputSerializer,
                         **errors(*JOB_ENDPOINT_ERRORS)}


class _GenerationCreateView(JobCreateView):
    input_serializer: type[StrictSerializer]

    def post(self, request: Request) -> Response:
        body = self.input_serializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        job_options = job_options_from(request)
        self.charge_rate_limit(request)  # only valid requests count
        created = generation_create(key=request.auth, job_options=job_options, **body.validated_data)
        del body  # its field copies (≈ 12 KB) are not kept through a wait of seconds
        return respond_with_job(request, created)


@extend_schema_view(post=extend_schema(
    operation_id="text_to_image_create", tags=["generation"], summary="Generate an image (JSON)",
    request=TextToImageInputSerializer, parameters=[PREFER, IDEMPOTENCY_KEY, CANCEL_AFTER], responses=_GENERATION_RESPONSES,
    examples=[OpenApiExample("A sunset", request_only=True, value={
        "prompt": "A beautiful sunset over mountains", "filename": "sunset", "aspectRatio": "16:9",
        "autoEnhance": True, "enhancementOptions": {"template": "photorealistic", "mood": "calm"}})]))
class TextToImageView(_GenerationCreateView):
    input_serializer = TextToImageInputSerializer


@extend_schema_view(post=extend_schema(
    operation_id="generate_create", tags=["generation"],
    summary="Generate an image with optional reference images (multipart)",
    request={"multipart/form-data": GenerateInputSerializer}, parameters=[PREFER, IDEMPOTENCY_KEY, CANCEL_AFTER],
    responses=_GENERATION_RESPONSES,
    examples=[OpenApiExample("A mountain, no reference images", request_only=True, media_type="multipart/form-data", value={
        "prompt": "A majestic mountain landscape at sunset", "filename": "mountain", "aspectRatio": "1:1",
        "autoEnhance": False})]))
class GenerateView(_GenerationCreateView):
    parser_classes = [MultiPartParser, FormParser]
    input_serializer = GenerateInputSerializer


class ImageView(APIView):
    """Public, as documented: image URLs are unguessable (128 random bits per key)."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="image_retrieve", tags=["images"], auth=[], summary="Serve a generated image",
        parameters=[OpenApiParameter("path", str, OpenApiParameter.PATH, description="The image's filepath.")],
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The image bytes."),
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "image/webp"): OpenApiResponse(OpenApiTypes.BINARY),
            304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)."),
            **errors(404, 405, 500),
        },
    )
    def get(self, request: Request, path: str) -> HttpResponse:
        key = path
        if not SERVABLE_KEY.match(key) or not default_storage.exists(key):
            raise ImageNotFound()
        etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            response: HttpResponse = HttpResponseNotModified()
        else:
            response = FileResponse(default_storage.open(key, "rb"), content_type=content_type_for(key))
            response["Content-Length"] = str(default_storage.size(key))
        response["ETag"] = etag
        # Keys are never reused for other bytes, so the content never changes.
        response["Cache-Control"] = "public, max-age=31536000, immutable"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    # DRF would wrap the file in its renderer; answer with the raw response.
    def finalize_response(self, request, response, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(response, (FileResponse, HttpResponseNotModified)):
            return response
        return super().finalize_response(request, response, *args, **kwargs)
