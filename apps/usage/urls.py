from __future__ import annotations

from apps.usage import views
from banatie.routing import route

urlpatterns = [
    route(r"api/usage", views.UsageView, "usage"),
    route(r"api/admin/projects/(?P<projectId>[^/]+)", views.ProjectQuotaView, "admin-project"),
    route(r"api/admin/projects", views.ProjectListView, "admin-projects"),
]
