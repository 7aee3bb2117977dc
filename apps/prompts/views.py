from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs.options import job_options_from
from apps.jobs.responders import respond_with_job
from apps.jobs.serializers import JobAcceptedOutputSerializer
from apps.jobs.views import JobCreateView
from apps.prompts.serializers import EnhanceInputSerializer, EnhanceOutputSerializer
from apps.prompts.services import enhancement_create
from banatie.errors import translate
from banatie.openapi import CANCEL_AFTER, IDEMPOTENCY_KEY, JOB_ENDPOINT_ERRORS, PREFER, errors


class EnhanceView(JobCreateView):
    # The prompt as sent, once the body was parsed: error bodies of this endpoint repeat it,
    # as the reference shows.
    prompt_sent: str | None = None

    @extend_schema(
        operation_id="enhance_create", tags=["generation"], summary="Enhance a prompt",
        request=EnhanceInputSerializer, parameters=[PREFER, IDEMPOTENCY_KEY, CANCEL_AFTER],
        examples=[OpenApiExample("A cat", request_only=True, value={
            "prompt": "a cat on a windowsill", "options": {"imageStyle": "photorealistic", "aspectRatio": "16:9"}})],
        responses={200: EnhanceOutputSerializer, 202: JobAcceptedOutputSerializer, **errors(*JOB_ENDPOINT_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        data = request.data
        prompt = data.get("prompt") if isinstance(data, dict) else None
        self.prompt_sent = prompt if isinstance(prompt, str) else None
        body = EnhanceInputSerializer(data=data, context={"request": request})
        body.is_valid(raise_exception=True)
        job_options = job_options_from(request)
        self.charge_rate_limit(request)  # only valid requests count
        created = enhancement_create(key=request.auth, job_options=job_options, **body.validated_data)
        del body  # its field copies are not kept through a wait of seconds
        return respond_with_job(request, created)

    def handle_exception(self, exc: Exception) -> Any:
        err = translate(exc, self.get_exception_handler_context())
        if self.prompt_sent is not None:
            err.extra["originalPrompt"] = self.prompt_sent
        return super().handle_exception(err)
