from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView

from apps.keys.errors import ApiKeyMissing, MasterKeyRequired, ProjectKeyRequired


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.auth is None:
            raise ApiKeyMissing()
        return True


class IsMasterKey(HasApiKey):
    def has_permission(self, request: Request, view: APIView) -> bool:
        super().has_permission(request, view)
        if not request.auth.is_master:
            raise MasterKeyRequired(
                f"This route needs a master key; you sent a {request.auth.key_type} key"
                + (f" for project {request.auth.project_id!r}." if request.auth.project_id else ".")
            )
        return True


class IsProjectKey(HasApiKey):
    """Routes meant for third-party apps (the OpenAI-compatible /v1): a key pasted into an
    app's settings must not be able to mint or revoke keys, so a master key is refused."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        super().has_permission(request, view)
        if request.auth.is_master:
            raise ProjectKeyRequired("This route needs a project key; you sent a master key.")
        return True
