from __future__ import annotations

from apps.jobs import views
from banatie.routing import route

urlpatterns = [
    route(r"api/jobs/(?P<jobId>[^/]+)/events", views.JobEventsView, "job-events"),
    route(r"api/jobs/(?P<jobId>[^/]+)/cancel", views.JobCancelView, "job-cancel"),
    route(r"api/jobs/(?P<jobId>[^/]+)", views.JobDetailView, "job"),
    route(r"api/jobs", views.JobListView, "jobs"),
]
