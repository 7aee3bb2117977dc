from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.jobs.models import Job
from apps.jobs.serializers import JobUsageOutputSerializer, StyleOptionsSerializer, prompt_field
from banatie.serializers import OutputSerializer, StrictChoiceField, StrictSerializer
from workers.providers.templates import ENHANCE_ASPECT_RATIOS, TEMPLATES


class EnhanceOptionsSerializer(StyleOptionsSerializer):
    imageStyle = StrictChoiceField(choices=TEMPLATES, required=False, source="image_style")
    aspectRatio = StrictChoiceField(choices=ENHANCE_ASPECT_RATIOS, required=False, source="aspect_ratio")


class EnhanceInputSerializer(StrictSerializer):
    prompt = prompt_field(min_length=1, max_length=5000)
    options = EnhanceOptionsSerializer(required=False)


# --- output: rendered from the enhancement job's stored result ---------------------------

class EnhanceMetadataOutputSerializer(OutputSerializer):
    style = serializers.CharField()
    aspectRatio = serializers.CharField(allow_null=True)
    enhancements = serializers.ListField(child=serializers.CharField())
    provider = serializers.CharField()
    model = serializers.CharField()


class EnhanceSyncMetadataOutputSerializer(EnhanceMetadataOutputSerializer):
    omit_when_none = ("usage",)

    usage = JobUsageOutputSerializer(required=False, help_text="What the enhancement call consumed and cost.")


# The /api/enhance result, as stored on the job (and shown as a job's `data`).
class EnhanceResultOutputSerializer(OutputSerializer):

    originalPrompt = serializers.CharField()
    enhancedPrompt = serializers.CharField()
    detectedLanguage = serializers.CharField()
    appliedTemplate = serializers.CharField()
    metadata = EnhanceMetadataOutputSerializer()


# The synchronous 200 of /api/enhance: the result, plus success and jobId.
class EnhanceOutputSerializer(OutputSerializer):

    success = serializers.SerializerMethodField()
    originalPrompt = serializers.CharField(source="result.originalPrompt")
    enhancedPrompt = serializers.CharField(source="result.enhancedPrompt")
    detectedLanguage = serializers.CharField(source="result.detectedLanguage")
    appliedTemplate = serializers.CharField(source="result.appliedTemplate")
    metadata = serializers.SerializerMethodField()
    jobId = serializers.UUIDField(source="id")

    def get_success(self, job: Job) -> bool:
        return True

    @extend_schema_field(EnhanceSyncMetadataOutputSerializer)
    def get_metadata(self, job: Job) -> dict[str, Any]:
        return EnhanceSyncMetadataOutputSerializer({**job.result["metadata"], "usage": job.usage}).data
