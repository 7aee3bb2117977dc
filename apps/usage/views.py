from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.keys.permissions import IsMasterKey
from apps.keys.serializers import ID_PATTERN, ID_RULE
from apps.usage.selectors import project_usage, projects_usage, usage_report, usage_scope
from apps.usage.serializers import (
    ProjectDetailOutputSerializer, ProjectListOutputSerializer, ProjectPathInputSerializer, ProjectQuotaInputSerializer,
    UsageInputSerializer, UsageOutputSerializer,
)
from apps.usage.services import quota_set
from banatie.errors import ValidationFailed
from banatie.openapi import errors

PROJECT_ID = OpenApiParameter("projectId", {"type": "string", "pattern": ID_PATTERN, "maxLength": 100},
                              OpenApiParameter.PATH, description=f"The project's id. {ID_RULE}")


class UsageView(APIView):
    @extend_schema(
        operation_id="usage_report", tags=["usage"], summary="Usage and cost per day, key, model or project",
        description="Sums of the jobs that ended, by the UTC day they were created: a project key reads its "
                    "project; a master key one project (`projectId`) or every project. Computed from a daily "
                    "rollup, so it costs the same however many jobs there are. Not rate limited.",
        parameters=[UsageInputSerializer], responses={200: UsageOutputSerializer, **errors(400, 401, 403, 405, 500)},
    )
    def get(self, request: Request) -> Response:
        params = UsageInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        scope = usage_scope(key=request.auth, project_id=data.get("project_id"), group_by=data["group_by"])
        report = usage_report(scope=scope, date_from=data["date_from"], date_to=data["date_to"],
                              group_by=data["group_by"])
        return Response(UsageOutputSerializer(report).data)


class ProjectListView(APIView):
    permission_classes = [IsMasterKey]

    @extend_schema(operation_id="projects_list", tags=["usage"],
                   summary="Projects with their quotas and this month's usage (master key)",
                   responses={200: ProjectListOutputSerializer, **errors(401, 403, 405, 500)})
    def get(self, request: Request) -> Response:
        return Response(ProjectListOutputSerializer(projects_usage()).data)


class ProjectQuotaView(APIView):
    permission_classes = [IsMasterKey]

    @extend_schema(operation_id="project_quota_set", tags=["usage"], summary="Set a project's quotas (master key)",
                   description="Both fields are required; null means no limit. Checked when a job is created: "
                               "over a quota the request gets 429 `quota_exceeded`.",
                   parameters=[PROJECT_ID], request=ProjectQuotaInputSerializer,
                   responses={200: ProjectDetailOutputSerializer, **errors(400, 401, 403, 405, 415, 500)})
    def put(self, request: Request, projectId: str) -> Response:  # noqa: N803 - the documented name
        path = ProjectPathInputSerializer(data={"projectId": projectId})
        if not path.is_valid():
            # The path's error keeps its own wording (one message naming the value), not a body's.
            raise ValidationFailed(f"projectId {projectId!r} is not a project id. {ID_RULE}", field="projectId")
        project_id = path.validated_data["project_id"]
        body = ProjectQuotaInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        quota = quota_set(project_id=project_id, **body.validated_data)
        return Response(ProjectDetailOutputSerializer(project_usage(project_id, quota)).data)

