from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.keys.errors import RateLimiterUnavailable
from apps.keys.permissions import IsMasterKey
from apps.keys.selectors import key_get, key_list
from apps.keys.serializers import (
    BootstrapOutputSerializer, KeyCreateInputSerializer, KeyCreateOutputSerializer, KeyListOutputSerializer,
    KeyRevokeOutputSerializer, MeOutputSerializer, key_metadata,
)
from apps.keys.services import key_bootstrap, key_create, key_revoke
from apps.keys.throttling import rate_state
from banatie.openapi import errors

SAVE_MESSAGE = "IMPORTANT: Save this key securely. You will not see it again!"


class BootstrapView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="bootstrap_initial_key", request=None, tags=["keys"], auth=[],
        summary="Create the first master key (works once per installation)",
        responses={201: BootstrapOutputSerializer, **errors(403, 405, 500)},
    )
    def post(self, request: Request) -> Response:
        minted = key_bootstrap()
        return Response(
            {
                "apiKey": minted.plaintext,
                "type": minted.key.key_type,
                "name": minted.key.name,
                "expiresAt": None,
                "metadata": key_metadata(minted.key),
                "message": SAVE_MESSAGE,
            },
            status=status.HTTP_201_CREATED,
        )


class KeyListCreateView(APIView):
    permission_classes = [IsMasterKey]

    @extend_schema(operation_id="keys_list", tags=["keys"], summary="List all API keys (master key)",
                   responses={200: KeyListOutputSerializer, **errors(401, 403, 405, 500)})
    def get(self, request: Request) -> Response:
        keys = [key_metadata(key) for key in key_list()]
        return Response({"keys": keys, "total": len(keys)})

    @extend_schema(operation_id="keys_create", tags=["keys"], summary="Create an API key (master key)",
                   request=KeyCreateInputSerializer,
                   responses={201: KeyCreateOutputSerializer, **errors(400, 401, 403, 405, 415, 500)})
    def post(self, request: Request) -> Response:
        body = KeyCreateInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        minted = key_create(
            key_type=data["type"],
            project_id=data.get("projectId"),
            organization_id=data.get("organizationId"),
            name=data.get("name", ""),
            expires_in_days=data.get("expiresInDays"),
            created_by=request.auth,
        )
        return Response(
            {"apiKey": minted.plaintext, "metadata": key_metadata(minted.key), "message": SAVE_MESSAGE},
            status=status.HTTP_201_CREATED,
        )


class KeyRevokeView(APIView):
    permission_classes = [IsMasterKey]

    @extend_schema(
        operation_id="keys_revoke", tags=["keys"], summary="Revoke an API key (master key)",
        parameters=[OpenApiParameter("keyId", str, OpenApiParameter.PATH, description="The key's id (uuid).")],
        responses={200: KeyRevokeOutputSerializer, **errors(401, 403, 404, 405, 409, 500)},
    )
    def delete(self, request: Request, keyId: str) -> Response:  # noqa: N803 - the documented name
        key = key_revoke(key=key_get(key_id=keyId))
        return Response({"message": "API key revoked successfully", "keyId": str(key.id), "metadata": key_metadata(key)})


class MeView(APIView):
    """Is my key OK? Who am I, what may I do, how much budget is left."""

    @extend_schema(operation_id="me", tags=["keys"], summary="Describe the calling key and its rate-limit state",
                   responses={200: MeOutputSerializer, **errors(401, 405, 500)})
    def get(self, request: Request) -> Response:
        body = {"success": True, "key": key_metadata(request.auth)}
        try:
            state = rate_state(request, increment=False)
        except RateLimiterUnavailable as exc:
            # The key is fine; only its budget cannot be read right now.
            return Response({**body, "rateLimit": None, "rateLimitError": exc.message})
        return Response({
            **body,
            "rateLimit": {
                "rate": settings.BANATIE_RATE_LIMIT,
                "limit": state.limit,
                "used": min(state.used, state.limit),
                "remaining": state.remaining,
                "resetAt": state.headers()["X-RateLimit-Reset"],
                "appliesTo": ["POST /api/generate", "POST /api/text-to-image", "POST /api/enhance"],
            },
        })
