"""The enhancement job kind: how the jobs core runs and renders it."""
from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from apps.jobs.kinds import JobKind
from apps.jobs.models import Job
from apps.prompts.serializers import EnhanceOutputSerializer, EnhanceResultOutputSerializer
from apps.prompts.services import ENHANCEMENT, enhancement_run, enhancement_upstream_model


def _data(job: Job, request: Request) -> dict[str, Any]:
    return EnhanceResultOutputSerializer(job.result).data


def _sync_body(job: Job, request: Request) -> dict[str, Any]:
    return EnhanceOutputSerializer(job).data


ENHANCEMENT_KIND = JobKind(name=ENHANCEMENT, run=enhancement_run, data=_data, sync_body=_sync_body,
                           data_schema=EnhanceResultOutputSerializer, upstream_model=enhancement_upstream_model)
