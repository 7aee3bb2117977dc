"""Routes. Every route takes an optional trailing slash itself (no redirects: a redirected
POST loses its body), and anything unmatched gets a JSON 404."""
from __future__ import annotations

from django.contrib import admin
from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from apps.generation import views as generation
from apps.keys import views as keys
from apps.prompts import views as prompts
from banatie import views as infra


def route(pattern: str, view, name: str):  # type: ignore[no-untyped-def]
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    route("health", infra.HealthView, "health"),
    route("api/info", infra.InfoView, "info"),
    route("api/bootstrap/initial-key", keys.BootstrapView, "bootstrap"),
    route("api/admin/keys", keys.KeyListCreateView, "keys"),
    route(r"api/admin/keys/(?P<keyId>[^/]+)", keys.KeyRevokeView, "key-revoke"),
    route("api/me", keys.MeView, "me"),
    route("api/enhance", prompts.EnhanceView, "enhance"),
    route(r"api/jobs/(?P<jobId>[^/]+)", generation.JobDetailView, "job"),
    route("api/text-to-image", generation.TextToImageView, "text-to-image"),
    route("api/generate", generation.GenerateView, "generate"),
    re_path(r"^api/images/(?P<path>.+)$", generation.ImageView.as_view(), name="image"),
    re_path(r"^api/schema/?$", SpectacularJSONAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    re_path(r"^.*$", infra.NotFoundView.as_view(), name="not-found"),
]

handler400 = "banatie.errors.handler400"
handler403 = "banatie.errors.handler403"
handler404 = "banatie.errors.handler404"
handler500 = "banatie.errors.handler500"
