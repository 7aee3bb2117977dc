from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.jobs.selectors import job_get_for_key, job_idempotent_replay_exists
from apps.jobs.serializers import JobDetailOutputSerializer, job_detail_schema
from apps.keys.throttling import RateLimitedView
from banatie.openapi import errors


class JobDetailView(APIView):
    @extend_schema(
        operation_id="job_retrieve", tags=["jobs"], summary="Status and result of a job",
        parameters=[OpenApiParameter("jobId", str, OpenApiParameter.PATH, description="The job's id (uuid).")],
        responses={200: job_detail_schema(), **errors(401, 404, 405, 500)},
    )
    def get(self, request: Request, jobId: str) -> Response:  # noqa: N803 - the documented name
        job = job_get_for_key(key=request.auth, job_id=jobId)
        return Response(JobDetailOutputSerializer(job, context={"request": request}).data)


# The base of every job-creating endpoint (no docstring: it would become each endpoint's
# OpenAPI description): the per-key budget, where an idempotent replay is not charged twice.
class JobCreateView(RateLimitedView):
    # Asked twice per request (the throttle, then the charge): looked up once. A view
    # instance serves one request.
    _is_replay: bool | None = None

    def charges_rate_limit(self, request: Request) -> bool:
        if self._is_replay is None:
            key = request.headers.get("Idempotency-Key")
            self._is_replay = bool(key and job_idempotent_replay_exists(key=request.auth, idempotency_key=key))
        return not self._is_replay
