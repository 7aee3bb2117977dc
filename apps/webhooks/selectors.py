"""Reads of the webhooks app, always scoped by the caller: a project key sees its project's
endpoints; a master key its own scope ("_master", like the jobs it creates) or, with
``projectId``, that project's."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.jobs.errors import InvalidCursor
from apps.keys.models import ApiKey
from apps.keys.selectors import project_scope_resolve
from apps.webhooks.errors import DeliveryNotFound, WebhookNotFound
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from banatie.cursors import Page, keyset_page
from banatie.lookups import get_by_uuid

_DELIVERY_CURSOR_SALT = "banatie.webhooks.deliveries.cursor"


def webhook_scope(*, key: ApiKey, project_id: str | None) -> str:
    """The project whose endpoints the caller acts on. A project key may name only its own
    project (MasterKeyRequired otherwise)."""
    return project_scope_resolve(key=key, project_id=project_id, verb="manage", noun="webhooks") or key.project_scope


def webhook_list(*, project_id: str) -> QuerySet[WebhookEndpoint]:
    """The project's endpoints, newest first (active or disabled)."""
    return WebhookEndpoint.objects.filter(project_id=project_id).order_by("-created_at", "-pk")


def webhook_get(*, project_id: str, webhook_id: str) -> WebhookEndpoint:
    """Another project's endpoint, a malformed id and an unknown id are the same 404."""
    return get_by_uuid(WebhookEndpoint.objects.filter(project_id=project_id), webhook_id, not_found=WebhookNotFound)


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: str) -> WebhookDelivery:
    return get_by_uuid(endpoint.deliveries.all(), delivery_id, not_found=DeliveryNotFound)


def delivery_page(*, endpoint: WebhookEndpoint, cursor: str | None, limit: int) -> Page[WebhookDelivery]:
    """One page of the endpoint's deliveries, newest first (banatie.cursors.keyset_page);
    InvalidCursor for a cursor this listing did not issue."""
    return keyset_page(WebhookDelivery.objects.filter(endpoint=endpoint), cursor=cursor, limit=limit,
                       salt=_DELIVERY_CURSOR_SALT, invalid=InvalidCursor)
