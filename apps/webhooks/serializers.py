"""Wire shapes of /api/webhooks: what a client sends (camelCase → Python names with
``source=``) and every answer's body."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.webhooks.events import ALLOWED_EVENTS, DEFAULT_EVENTS
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from banatie.serializers import (
    IsoDateTimeField, OutputSerializer, StrictCharField, StrictChoiceField, StrictSerializer, page_cursor_field,
    page_limit_field,
)



# Which project's webhooks (every /api/webhooks route takes it: the body of POST, the query
# string of the others).
class WebhookScopeInputSerializer(StrictSerializer):
    # Blank counts as not sent (projectId= in a query string).
    projectId = StrictCharField(required=False, allow_blank=True, max_length=100, source="project_id", help_text=(
        "Master keys: act on this project's webhooks (without it: the master keys' own, whose events are the "
        "jobs master keys create). A project key may only pass its own project's id."))


class WebhookCreateInputSerializer(WebhookScopeInputSerializer):
    read_only_names = ("id", "isActive", "createdAt", "secret", "disabledReason")

    url = StrictCharField(max_length=2000, help_text=(
        "Where deliveries are POSTed: an https URL whose host resolves only to public addresses."))
    events = serializers.ListField(
        child=StrictChoiceField(choices=list(ALLOWED_EVENTS)), required=False, allow_empty=False,
        max_length=len(ALLOWED_EVENTS),
        help_text=f"The events to send; left out: {', '.join(DEFAULT_EVENTS)}.")
    description = StrictCharField(required=False, allow_blank=True, max_length=500, default="")

    def validate_events(self, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))  # each once, in the order sent


class DeliveryListInputSerializer(WebhookScopeInputSerializer):
    limit = page_limit_field("Deliveries")
    cursor = page_cursor_field()


# --- output ----------------------------------------------------------------------------

# The base of every answer here: `success` is true.
class SuccessOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()

    def get_success(self, _: Any) -> bool:
        return True


# An endpoint as the API shows it: never its secret.
class WebhookOutputSerializer(OutputSerializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(ALLOWED_EVENTS)))
    description = serializers.CharField(allow_blank=True)
    isActive = serializers.BooleanField(source="is_active", help_text=(
        "False once the receiver answered 410 Gone: nothing is sent to it any more (see disabledReason)."))
    disabledReason = serializers.CharField(source="disabled_reason", allow_null=True, help_text=(
        "Why the endpoint was disabled; null while active."))
    createdAt = IsoDateTimeField(source="created_at")

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["disabledReason"] = data["disabledReason"] or None
        return data


# Rendered from a WebhookWithSecret: the only answers that carry a secret.
class WebhookCreateOutputSerializer(SuccessOutputSerializer):
    webhook = WebhookOutputSerializer()
    secret = serializers.CharField(help_text=(
        "The signing secret (whsec_...). Shown once: store it now; verify deliveries with it."))


class WebhookRotateOutputSerializer(WebhookCreateOutputSerializer):
    previousSecretExpiresAt = IsoDateTimeField(source="webhook.previous_secret_expires_at", help_text=(
        "Until then deliveries carry signatures with both the new and the previous secret."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].help_text = "The new signing secret (whsec_...). Shown once: store it now."


class WebhookListOutputSerializer(SuccessOutputSerializer):
    webhooks = WebhookOutputSerializer(many=True, source="*")


class WebhookDeleteOutputSerializer(SuccessOutputSerializer):
    webhook = WebhookOutputSerializer(source="*")


class DeliveryOutputSerializer(OutputSerializer):
    id = serializers.UUIDField()
    eventId = serializers.CharField(source="event_id", help_text="The webhook-id header: the same on every attempt.")
    type = serializers.ChoiceField(choices=list(ALLOWED_EVENTS))
    jobId = serializers.UUIDField(source="job_id")
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField(help_text="Attempts made so far, redeliveries included.")
    lastStatusCode = serializers.IntegerField(source="last_status_code", allow_null=True, help_text=(
        "The receiver's HTTP status at the last attempt; null when it gave none (refused, unreachable, timed out)."))
    lastError = serializers.CharField(source="last_error", allow_null=True, help_text=(
        "What went wrong at the last attempt; null when it was delivered or not attempted yet."))
    nextAttemptAt = IsoDateTimeField(source="next_attempt_at", allow_null=True, help_text=(
        "When the next attempt is due; null once succeeded or failed."))
    createdAt = IsoDateTimeField(source="created_at")
    deliveredAt = IsoDateTimeField(source="delivered_at", allow_null=True)

    def to_representation(self, instance: WebhookDelivery) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["lastError"] = data["lastError"] or None
        return data


class DeliveryListOutputSerializer(SuccessOutputSerializer):
    deliveries = DeliveryOutputSerializer(many=True, source="rows")
    nextCursor = serializers.CharField(source="next_cursor", allow_null=True, help_text=(
        "Pass as `cursor` for the next page; null on the last page."))
    hasMore = serializers.BooleanField(source="has_more")


class DeliveryRedeliverOutputSerializer(SuccessOutputSerializer):
    delivery = DeliveryOutputSerializer(source="*")

