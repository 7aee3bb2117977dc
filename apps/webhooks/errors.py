"""Errors of the webhooks API."""
from __future__ import annotations

from banatie.errors import ApiError


class WebhookUrlNotAllowed(ApiError):
    status_code = 400
    code = "webhook_url_not_allowed"
    error = "Validation failed"
    default_message = "This webhook URL is not allowed."
    hint = ("Use an https:// URL whose host resolves only to public internet addresses (operators: "
            "WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows http and private addresses, for local development).")


class WebhookNotFound(ApiError):
    status_code = 404
    code = "webhook_not_found"
    error = "Not found"
    default_message = "No webhook endpoint with this id in your project."
    hint = "Use an id from GET /api/webhooks, with the key of the project that registered it."


class DeliveryNotFound(ApiError):
    status_code = 404
    code = "delivery_not_found"
    error = "Not found"
    default_message = "No delivery with this id for this webhook endpoint."
    hint = "Use an id from GET /api/webhooks/{webhookId}/deliveries."
