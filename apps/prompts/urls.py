from __future__ import annotations

from apps.prompts import views
from banatie.routing import route

urlpatterns = [
    route("api/enhance", views.EnhanceView, "enhance"),
]
