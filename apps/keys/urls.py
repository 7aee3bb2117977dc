from __future__ import annotations

from apps.keys import views
from banatie.routing import route

urlpatterns = [
    route("api/bootstrap/initial-key", views.BootstrapView, "bootstrap"),
    route("api/admin/keys", views.KeyListCreateView, "keys"),
    route(r"api/admin/keys/(?P<keyId>[^/]+)", views.KeyRevokeView, "key-revoke"),
    route("api/me", views.MeView, "me"),
]
