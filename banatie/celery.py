"""The Celery app. Settings live in banatie/settings.py under the CELERY_ prefix."""
from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu.utils.objects import cached_property

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "banatie.settings")


class _Celery(Celery):
    @cached_property
    def Beat(self) -> type:  # noqa: N802 - Celery's name
        base = super().Beat

        class Beat(base):  # type: ignore[valid-type, misc]
            # Beat prints a plain-text banner; with LOG_FORMAT=json every line must be JSON
            # (the worker's banner is turned off in workers/lifecycle.py).
            def __init__(self, *args: Any, quiet: bool = False, **kwargs: Any) -> None:
                from django.conf import settings

                super().__init__(*args, quiet=quiet or settings.LOG_FORMAT == "json", **kwargs)

        return Beat


app = _Celery("banatie")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live in workers/tasks.py, outside the Django apps; imported when a worker starts.
app.conf.imports = ["workers.tasks", "workers.lifecycle"]
