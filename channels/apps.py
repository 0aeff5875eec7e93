from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # Our payment channels, not the Django Channels package.
    name = "channels"
    label = "payment_channels"
    verbose_name = "Payment channels"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models, which are loaded only now.
        from config.health import health_check_register
        from config.metrics import metrics_source_register

        from .monitoring import channel_metrics, gateway_ready_check

        health_check_register("gateway", gateway_ready_check)
        metrics_source_register(channel_metrics)
