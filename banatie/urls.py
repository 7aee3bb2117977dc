"""Routes. Every route takes an optional trailing slash itself (banatie.routing), and
anything unmatched gets a JSON 404. The apps' routes are included by dotted name: the
project package imports no app."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from banatie import views as infra
from banatie.routing import route

urlpatterns = [
    route("health", infra.HealthView, "health"),
    route("api/info", infra.InfoView, "info"),
    # Prometheus scrapes (banatie.views.metrics: loopback, or METRICS_TOKEN); in the schema by a hook.
    re_path(r"^metrics/?$", infra.metrics, name="metrics"),
    path("", include("apps.keys.urls")),
    path("", include("apps.generation.urls")),
    path("", include("apps.prompts.urls")),
    path("", include("apps.jobs.urls")),
    path("", include("apps.webhooks.urls")),
    path("", include("apps.usage.urls")),
    path("", include("apps.openai_compat.urls")),
    re_path(r"^api/schema/?$", SpectacularJSONAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/errors\.md$", infra.error_catalogue, name="error-catalogue"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    re_path(r"^.*$", infra.NotFoundView.as_view(), name="not-found"),
]

handler400 = "banatie.errors.handler400"
handler403 = "banatie.errors.handler403"
handler404 = "banatie.errors.handler404"
handler500 = "banatie.errors.handler500"
