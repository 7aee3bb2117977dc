"""The generation job kind: how the jobs core runs, renders and cleans up after it."""
from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from apps.generation.serializers import GenerationDataOutputSerializer, GenerationOutputSerializer
from apps.generation.services import (
    GENERATION, discard_image, image_generate, image_upstream_model, images_asked, images_in, release_references,
)
from apps.jobs.kinds import JobKind
from apps.jobs.models import Job


def _data(job: Job, request: Request) -> dict[str, Any]:
    return GenerationDataOutputSerializer(job, context={"request": request}).data


def _sync_body(job: Job, request: Request) -> dict[str, Any]:
    return GenerationOutputSerializer(job, context={"request": request}).data


GENERATION_KIND = JobKind(
    name=GENERATION, run=image_generate, data=_data, sync_body=_sync_body,
    release_request=release_references, discard_result=discard_image, data_schema=GenerationDataOutputSerializer,
    upstream_model=image_upstream_model, images=images_in, images_asked=images_asked,
)
