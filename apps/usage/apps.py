from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Usage and cost per day, key, model and project (GET /api/usage), and project quotas
    (/api/admin/projects), kept through the jobs core's transition hook."""

    name = "apps.usage"
    label = "usage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.jobs.transitions import transition_listen
        from apps.usage.services import usage_recorder

        transition_listen(usage_recorder)
