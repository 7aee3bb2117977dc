from __future__ import annotations

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
    KeyRevokeOutputSerializer, Me, MeOutputSerializer,
)
from apps.keys.services import key_bootstrap, key_create, key_revoke
from apps.keys.throttling import rate_state
from banatie.openapi import errors


class BootstrapView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="bootstrap_initial_key", request=None, tags=["keys"], auth=[],
        summary="Create the first master key (works once per installation)",
        responses={201: BootstrapOutputSerializer, **errors(403, 405, 500)},
    )
    def post(self, request: Request) -> Response:
        return Response(BootstrapOutputSerializer(key_bootstrap()).data, status=status.HTTP_201_CREATED)


class KeyListCreateView(APIView):
    permission_classes = [IsMasterKey]

    @extend_schema(operation_id="keys_list", tags=["keys"], summary="List all API keys (master key)",
                   responses={200: KeyListOutputSerializer, **errors(401, 403, 405, 500)})
    def get(self, request: Request) -> Response:
        return Response(KeyListOutputSerializer(list(key_list())).data)

    @extend_schema(operation_id="keys_create", tags=["keys"], summary="Create an API key (master key)",
                   request=KeyCreateInputSerializer,
                   responses={201: KeyCreateOutputSerializer, **errors(400, 401, 403, 405, 415, 500)})
    def post(self, request: Request) -> Response:
        body = KeyCreateInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        minted = key_create(created_by=request.auth, **body.validated_data)
        return Response(KeyCreateOutputSerializer(minted).data, status=status.HTTP_201_CREATED)


class KeyRevokeView(APIView):
    permission_classes = [IsMasterKey]

    @extend_schema(
        operation_id="keys_revoke", tags=["keys"], summary="Revoke an API key (master key)",
        parameters=[OpenApiParameter("keyId", str, OpenApiParameter.PATH, description="The key's id (uuid).")],
        responses={200: KeyRevokeOutputSerializer, **errors(401, 403, 404, 405, 409, 500)},
    )
    def delete(self, request: Request, keyId: str) -> Response:  # noqa: N803 - the documented name
        key = key_revoke(key=key_get(key_id=keyId))
        return Response(KeyRevokeOutputSerializer(key).data)


class MeView(APIView):
    """Is my key OK? Who am I, what may I do, how much budget is left."""

    @extend_schema(operation_id="me", tags=["keys"], summary="Describe the calling key and its rate-limit state",
                   responses={200: MeOutputSerializer, **errors(401, 405, 500)})
    def get(self, request: Request) -> Response:
        try:
            me = Me(key=request.auth, rate_limit=rate_state(request, increment=False))
        except RateLimiterUnavailable as exc:
            # The key is fine; only its budget cannot be read right now.
            me = Me(key=request.auth, rate_limit=None, rate_limit_error=exc.message)
        return Response(MeOutputSerializer(me).data)
