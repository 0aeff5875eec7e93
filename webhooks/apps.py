from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Registers the Celery tasks by name: services enqueue them through the app's registry (after commit),
        # because tasks.py imports services and services cannot import it back.
        from . import tasks  # noqa: F401
