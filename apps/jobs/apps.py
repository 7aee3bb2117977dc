from django.apps import AppConfig


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
