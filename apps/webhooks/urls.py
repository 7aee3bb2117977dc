from __future__ import annotations

from apps.webhooks import views
from banatie.routing import route

urlpatterns = [
    route("api/webhooks", views.WebhookListCreateView, "webhooks"),
    route(r"api/webhooks/(?P<webhookId>[^/]+)/rotate-secret", views.WebhookRotateSecretView, "webhook-rotate-secret"),
    route(r"api/webhooks/(?P<webhookId>[^/]+)/deliveries/(?P<deliveryId>[^/]+)/redeliver",
          views.DeliveryRedeliverView, "webhook-delivery-redeliver"),
    route(r"api/webhooks/(?P<webhookId>[^/]+)/deliveries", views.DeliveryListView, "webhook-deliveries"),
    route(r"api/webhooks/(?P<webhookId>[^/]+)", views.WebhookDeleteView, "webhook"),
]
