from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.webhooks.selectors import delivery_get, delivery_page, webhook_get, webhook_list, webhook_scope
from apps.webhooks.serializers import (
    DeliveryListInputSerializer, DeliveryListOutputSerializer, DeliveryRedeliverOutputSerializer,
    WebhookCreateInputSerializer, WebhookCreateOutputSerializer, WebhookDeleteOutputSerializer,
    WebhookListOutputSerializer, WebhookRotateOutputSerializer, WebhookScopeInputSerializer,
)
from apps.webhooks.services import delivery_redeliver, webhook_create, webhook_delete, webhook_rotate_secret
from banatie.openapi import errors

WEBHOOK_ID = OpenApiParameter("webhookId", str, OpenApiParameter.PATH, description="The endpoint's id (uuid).")
DELIVERY_ID = OpenApiParameter("deliveryId", str, OpenApiParameter.PATH, description="The delivery's id (uuid).")
SCOPE_PARAMETERS = [WebhookScopeInputSerializer]
# What every route on one endpoint can answer besides its success.
BY_ID_ERRORS = errors(400, 401, 403, 404, 405, 500)
SIGNING = ("Deliveries are signed as Standard Webhooks specifies (`webhook-id`, `webhook-timestamp`, "
           "`webhook-signature`); see docs/webhooks.md.")


def _scope(request: Request) -> str:
    params = WebhookScopeInputSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    return webhook_scope(key=request.auth, project_id=params.validated_data.get("project_id"))


def _webhook(request: Request, webhook_id: str):  # type: ignore[no-untyped-def]
    return webhook_get(project_id=_scope(request), webhook_id=webhook_id)


class WebhookListCreateView(APIView):
    @extend_schema(
        operation_id="webhooks_create", tags=["webhooks"], summary="Register a webhook endpoint",
        description="Job events of the project are POSTed to `url`. The answer carries the endpoint's signing "
                    "`secret`, shown this once. The URL must be https and its host must resolve only to public "
                    "addresses (`webhook_url_not_allowed` names why not). " + SIGNING,
        request=WebhookCreateInputSerializer,
        responses={201: WebhookCreateOutputSerializer, **errors(400, 401, 403, 405, 415, 500)},
    )
    def post(self, request: Request) -> Response:
        body = WebhookCreateInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        created = webhook_create(
            project_id=webhook_scope(key=request.auth, project_id=data.get("project_id")), url=data["url"],
            events=data.get("events"), description=data["description"], created_by=request.auth,
        )
        return Response(WebhookCreateOutputSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="webhooks_list", tags=["webhooks"], summary="List the project's webhook endpoints",
        description="Newest first, active and disabled ones; never their secrets.",
        parameters=SCOPE_PARAMETERS, responses={200: WebhookListOutputSerializer, **errors(400, 401, 403, 405, 500)},
    )
    def get(self, request: Request) -> Response:
        return Response(WebhookListOutputSerializer(list(webhook_list(project_id=_scope(request)))).data)


class WebhookDeleteView(APIView):
    @extend_schema(
        operation_id="webhook_delete", tags=["webhooks"], summary="Delete a webhook endpoint and its delivery log",
        parameters=[WEBHOOK_ID, *SCOPE_PARAMETERS],
        responses={200: WebhookDeleteOutputSerializer, **BY_ID_ERRORS},
    )
    def delete(self, request: Request, webhookId: str) -> Response:  # noqa: N803 - the documented name
        return Response(WebhookDeleteOutputSerializer(webhook_delete(webhook=_webhook(request, webhookId))).data)


class WebhookRotateSecretView(APIView):
    @extend_schema(
        operation_id="webhook_rotate_secret", tags=["webhooks"], summary="Replace the endpoint's signing secret",
        description="The answer carries the new `secret`, shown this once. For 24 hours deliveries carry two "
                    "signatures, one per secret (space-separated in `webhook-signature`), so a receiver verifies "
                    "with either while it switches.",
        request=None, parameters=[WEBHOOK_ID, *SCOPE_PARAMETERS],
        responses={200: WebhookRotateOutputSerializer, **BY_ID_ERRORS},
    )
    def post(self, request: Request, webhookId: str) -> Response:  # noqa: N803 - the documented name
        rotated = webhook_rotate_secret(webhook=_webhook(request, webhookId))
        return Response(WebhookRotateOutputSerializer(rotated).data)


class DeliveryListView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_list", tags=["webhooks"], summary="The endpoint's delivery log",
        description="Newest first, keyset-paginated: follow `nextCursor` until it is null. A delivery is one "
                    "event for this endpoint, with its attempts so far; `failed` ones stay in the log.",
        parameters=[WEBHOOK_ID, DeliveryListInputSerializer],
        responses={200: DeliveryListOutputSerializer, **BY_ID_ERRORS},
    )
    def get(self, request: Request, webhookId: str) -> Response:  # noqa: N803 - the documented name
        params = DeliveryListInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        endpoint = webhook_get(project_id=webhook_scope(key=request.auth, project_id=query.get("project_id")),
                               webhook_id=webhookId)
        page = delivery_page(endpoint=endpoint, cursor=query.get("cursor"), limit=query["limit"])
        return Response(DeliveryListOutputSerializer(page).data)


class DeliveryRedeliverView(APIView):
    @extend_schema(
        operation_id="webhook_delivery_redeliver", tags=["webhooks"], summary="Send a delivery again",
        description="The same event (same `webhook-id`, same body) is sent again now, with a fresh retry "
                    "schedule, whatever its status. Answers 202 at once; the attempt runs in a worker "
                    "(`Location`: the delivery log).",
        request=None, parameters=[WEBHOOK_ID, DELIVERY_ID, *SCOPE_PARAMETERS],
        responses={202: DeliveryRedeliverOutputSerializer, **BY_ID_ERRORS},
    )
    def post(self, request: Request, webhookId: str, deliveryId: str) -> Response:  # noqa: N803
        delivery = delivery_redeliver(delivery=delivery_get(endpoint=_webhook(request, webhookId),
                                                            delivery_id=deliveryId))
        return Response(DeliveryRedeliverOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/webhooks/{delivery.endpoint_id}/deliveries"})
