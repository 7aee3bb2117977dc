from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.generation.models import Job
from apps.generation.responses import respond_with_job
from apps.generation.services import job_create
from apps.keys.throttling import KeyRateThrottle, RateLimitHeadersMixin
from apps.prompts.serializers import EnhanceInputSerializer, options_to_python


class EnhanceView(RateLimitHeadersMixin, APIView):
    throttle_classes = [KeyRateThrottle]

    def post(self, request: Request) -> Response:
        body = EnhanceInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = job_create(
            key=request.auth, kind=Job.Kind.ENHANCEMENT,
            request={"prompt": data["prompt"], "options": options_to_python(data.get("options", {}))},
        )
        return respond_with_job(request, job)

    def error_extra(self, request: Request) -> dict[str, Any]:
        """Error bodies of this endpoint repeat the prompt, as the reference shows."""
        data = request.data if isinstance(getattr(request, "_full_data", None), dict) else {}
        prompt = data.get("prompt")
        return {"originalPrompt": prompt} if isinstance(prompt, str) else {}
