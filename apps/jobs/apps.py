import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("apps.jobs")


class JobsConfig(AppConfig):
    """The job state machine every feature app builds on. It knows no feature app: job
    kinds register themselves (apps.jobs.kinds) from their own AppConfig.ready()."""

    name = "apps.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # /health asks the provider the jobs call (the banatie package imports no app).
        from banatie.health import register_check
        from workers.providers import provider_health

        register_check("provider", provider_health)
        from apps.jobs.metering import unpriced_models

        # A missing price is no reason to refuse to start: those jobs get costUsd null.
        for model in unpriced_models([settings.GEMINI_IMAGE_MODEL, settings.GEMINI_TEXT_MODEL]):
            logger.warning("GEMINI_PRICES has no price for %s: its jobs will show costUsd null", model)
        # /metrics: the queue's gauges, counted at scrape time.
        from apps.jobs.metrics import JobsStateCollector
        from banatie.metrics import register_collector

        register_collector(JobsStateCollector())
