from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed webhooks (Standard Webhooks) about job transitions. The jobs core knows no
    webhook: this app registers its outbox recorder with apps.jobs.transitions."""

    name = "apps.webhooks"
    label = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.jobs.transitions import transition_listen
        from apps.webhooks.delivery import delivery_recorder

        transition_listen(delivery_recorder)
