"""The Celery app. Settings live in banatie/settings.py under the CELERY_ prefix."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "banatie.settings")

app = Celery("banatie")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live in workers/tasks.py, outside the Django apps; imported when a worker starts.
app.conf.imports = ["workers.tasks", "workers.lifecycle"]
