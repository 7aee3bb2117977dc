from __future__ import annotations

from django.urls import re_path

from apps.generation import views
from banatie.routing import route

urlpatterns = [
    route("api/generate", views.GenerateView, "generate"),
    route("api/text-to-image", views.TextToImageView, "text-to-image"),
    re_path(r"^api/images/(?P<path>.+)$", views.ImageView.as_view(), name="image"),
]
