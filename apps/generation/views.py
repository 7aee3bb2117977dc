from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.generation.responses import job_detail
from apps.generation.selectors import job_get_for_key


class JobDetailView(APIView):
    def get(self, request: Request, job_id: str) -> Response:
        job = job_get_for_key(key=request.auth, job_id=job_id)
        return Response(job_detail(job, request))
