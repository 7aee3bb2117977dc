from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "apps.prompts"
    label = "prompts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.jobs.kinds import kind_register
        from apps.prompts.kinds import ENHANCEMENT_KIND

        kind_register(ENHANCEMENT_KIND)
