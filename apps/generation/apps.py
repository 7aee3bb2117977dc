from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "apps.generation"
    label = "generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.generation.kinds import GENERATION_KIND
        from apps.jobs.kinds import kind_register

        kind_register(GENERATION_KIND)
