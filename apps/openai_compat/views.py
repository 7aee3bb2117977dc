"""/v1: OpenAI's Images API and model list over our generation jobs. Each view validates,
charges the key's budget (the native endpoints' budget), calls one service, waits, and
renders OpenAI's body; every error is rendered by the one handler and re-shaped on /v1 by
the middleware (shapes.py)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.jobs.options import job_options_from
from apps.jobs.views import JobCreateView
from apps.keys.permissions import IsProjectKey
from apps.openai_compat.serializers import (
    ImageEditInputSerializer, ImageGenerationInputSerializer, ImagesResponseOutputSerializer,
    ModelListOutputSerializer,
)
from apps.openai_compat.services import openai_images_create, openai_job_wait
from banatie.openapi import CANCEL_AFTER, IDEMPOTENCY_KEY, openai_errors
from banatie.serializers import StrictSerializer

# No 202 and no 409 from Prefer here: /v1 always waits. 409: a Cancel-After deadline passed.
_IMAGES_ERRORS = openai_errors(400, 401, 403, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504)
_DESCRIPTION = ("OpenAI-compatible (the `openai` SDK works unmodified with base_url …/v1). Creates the same "
                "generation job as /api and waits for it up to OPENAI_COMPAT_WAIT_SECONDS (no 202): then 504 "
                "`job_timeout` naming the job, which keeps running. Errors are in OpenAI's shape. Needs a "
                "project key (a master key is 403 `project_key_required`). See docs/openai-compatibility.md.")


class _OpenAIImagesView(JobCreateView):
    permission_classes = [IsProjectKey]
    input_serializer: type[StrictSerializer]

    def request_body(self, request: Request) -> Any:
        return request.data

    def post(self, request: Request) -> Response:
        body = self.input_serializer(data=self.request_body(request), context={"request": request})
        body.is_valid(raise_exception=True)
        options = dict(body.validated_data)
        response_format = options.pop("response_format", None) or "url"
        job_options = job_options_from(request)
        self.charge_rate_limit(request)  # only valid requests count
        created = openai_images_create(key=request.auth, job_options=job_options, **options)
        del body, options  # not kept through a wait of seconds
        job = openai_job_wait(created)
        context = {"request": request, "response_format": response_format}
        headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
        return Response(ImagesResponseOutputSerializer(job, context=context).data, headers=headers)


class ImageGenerationView(_OpenAIImagesView):
    parser_classes = [JSONParser]
    input_serializer = ImageGenerationInputSerializer

    @extend_schema(
        operation_id="openai_images_generate", tags=["openai"], summary="Create images (OpenAI Images API)",
        description=_DESCRIPTION, request=ImageGenerationInputSerializer, parameters=[IDEMPOTENCY_KEY, CANCEL_AFTER],
        responses={200: ImagesResponseOutputSerializer, **_IMAGES_ERRORS},
        examples=[OpenApiExample("Two images, 3:2", request_only=True, value={
            "prompt": "A lighthouse on a cliff at dusk", "n": 2, "size": "1536x1024", "response_format": "url"})],
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ImageEditView(_OpenAIImagesView):
    parser_classes = [MultiPartParser, FormParser]
    input_serializer = ImageEditInputSerializer

    def request_body(self, request: Request) -> dict[str, Any]:
        # The SDK sends one file as `image` and several as `image[]`: both become `image`.
        data: dict[str, Any] = {name: request.data.get(name) for name in request.data.keys()
                                if name not in ("image", "image[]") and name not in request.FILES}
        images = request.FILES.getlist("image") + request.FILES.getlist("image[]")
        if images or "image" in request.data or "image[]" in request.data:
            data["image"] = images or [request.data.get("image") or request.data.get("image[]")]
        for name in request.FILES:
            if name not in ("image", "image[]"):
                data[name] = request.FILES[name]
        return data

    @extend_schema(
        operation_id="openai_images_edit", tags=["openai"], summary="Edit images (OpenAI Images API)",
        description=_DESCRIPTION + " The images are the reference images of an /api/generate job.",
        request={"multipart/form-data": ImageEditInputSerializer}, parameters=[IDEMPOTENCY_KEY, CANCEL_AFTER],
        responses={200: ImagesResponseOutputSerializer, **_IMAGES_ERRORS},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ModelListView(APIView):
    permission_classes = [IsProjectKey]

    @extend_schema(
        operation_id="openai_models_list", tags=["openai"], summary="The image models (OpenAI list shape)",
        description="GEMINI_IMAGE_MODELS, the default first. Needs a project key.",
        responses={200: ModelListOutputSerializer, **openai_errors(401, 403, 405, 500)},
    )
    def get(self, request: Request) -> Response:
        models = [{"id": name, "object": "model", "created": 0, "owned_by": "google"}
                  for name in settings.GEMINI_IMAGE_MODELS]
        return Response(ModelListOutputSerializer({"object": "list", "data": models}).data)
