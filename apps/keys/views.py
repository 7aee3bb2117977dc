from __future__ import annotations

from django.conf import settings
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.keys.permissions import IsMasterKey
from apps.keys.selectors import key_get, key_list
from apps.keys.serializers import KeyCreateInputSerializer, key_metadata
from apps.keys.services import key_bootstrap, key_create, key_revoke
from apps.keys.throttling import rate_state

SAVE_MESSAGE = "IMPORTANT: Save this key securely. You will not see it again!"


class BootstrapView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

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

    def get(self, request: Request) -> Response:
        keys = [key_metadata(key) for key in key_list()]
        return Response({"keys": keys, "total": len(keys)})

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

    def delete(self, request: Request, key_id: str) -> Response:
        key = key_revoke(key=key_get(key_id=key_id))
        return Response({"message": "API key revoked successfully", "keyId": str(key.id), "metadata": key_metadata(key)})


class MeView(APIView):
    """Is my key OK? Who am I, what may I do, how much budget is left."""

    def get(self, request: Request) -> Response:
        state = rate_state(request, increment=False)
        return Response(
            {
                "success": True,
                "key": key_metadata(request.auth),
                "rateLimit": {
                    "rate": settings.BANATIE_RATE_LIMIT,
                    "limit": state.limit,
                    "used": min(state.used, state.limit),
                    "remaining": state.remaining,
                    "resetAt": state.headers()["X-RateLimit-Reset"],
                    "appliesTo": ["POST /api/generate", "POST /api/text-to-image", "POST /api/enhance"],
                },
            }
        )
