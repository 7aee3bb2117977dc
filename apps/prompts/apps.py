from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "apps.prompts"
    label = "prompts"
    default_auto_field = "django.db.models.BigAutoField"
