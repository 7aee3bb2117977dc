"""Django admin for webhooks: endpoints (never their secrets: the fields are not on any
page) and the delivery log, with "Redeliver selected" through the API's own service."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import delivery_redeliver


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "project_id", "is_active", "events", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "project_id", "description")
    # Listed explicitly (no `exclude`): a field added to the model later is not shown by accident.
    readonly_fields = ("id", "project_id", "url", "events", "is_active", "disabled_reason",
                       "previous_secret_expires_at", "created_at", "created_by")
    fields = readonly_fields + ("description",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # registered through the API, which shows the secret once


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "status", "attempts", "last_status_code", "endpoint", "created_at",
                    "next_attempt_at")
    list_filter = ("status", "type")
    search_fields = ("event_id", "job_id")
    readonly_fields = ("id", "endpoint", "event_id", "type", "job_id", "status", "attempts", "last_status_code",
                       "last_error", "next_attempt_at", "created_at", "delivered_at", "body")
    fields = readonly_fields
    actions = ["redeliver_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries are recorded with the job events they tell of

    @admin.action(description="Redeliver selected", permissions=["change"])
    def redeliver_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            delivery_redeliver(delivery=delivery)
            count += 1
        self.message_user(request, f"{count} deliver{'y' if count == 1 else 'ies'} will be sent again.",
                          messages.SUCCESS)

