from django.apps import AppConfig


class OpenAICompatConfig(AppConfig):
    """The OpenAI-compatible front door (/v1): the same generation jobs as /api, in OpenAI's
    wire shape (docs/openai-compatibility.md)."""

    name = "apps.openai_compat"
    label = "openai_compat"
    default_auto_field = "django.db.models.BigAutoField"
