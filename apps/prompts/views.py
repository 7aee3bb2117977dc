from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.generation.models import Job
from apps.generation.idempotency import idempotency_from
from apps.generation.responses import JobEndpointMixin, respond_with_job
from apps.generation.services import job_create
from apps.generation.serializers import JobAcceptedOutputSerializer
from apps.prompts.serializers import EnhanceInputSerializer, EnhanceOutputSerializer, options_to_python
from banatie.openapi import IDEMPOTENCY_KEY, JOB_ENDPOINT_ERRORS, PREFER, errors


class EnhanceView(JobEndpointMixin, APIView):
    @extend_schema(
        operation_id="enhance_create", tags=["generation"], summary="Enhance a prompt",
        request=EnhanceInputSerializer, parameters=[PREFER, IDEMPOTENCY_KEY],
        responses={200: EnhanceOutputSerializer, 202: JobAcceptedOutputSerializer, **errors(*JOB_ENDPOINT_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        body = EnhanceInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = job_create(
            key=request.auth, kind=Job.Kind.ENHANCEMENT,
            request={"prompt": data["prompt"], "options": options_to_python(data.get("options", {}))},
            idempotency=idempotency_from(request),
        )
        return respond_with_job(request, job)

    def error_extra(self, request: Request) -> dict[str, Any]:
        """Error bodies of this endpoint repeat the prompt, as the reference shows."""
        data = request.data if isinstance(getattr(request, "_full_data", None), dict) else {}
        prompt = data.get("prompt")
        return {"originalPrompt": prompt} if isinstance(prompt, str) else {}
