from __future__ import annotations

from apps.openai_compat import views
from banatie.routing import route

urlpatterns = [
    route("v1/images/generations", views.ImageGenerationView, "openai-images-generations"),
    route("v1/images/edits", views.ImageEditView, "openai-images-edits"),
    route("v1/models", views.ModelListView, "openai-models"),
]
