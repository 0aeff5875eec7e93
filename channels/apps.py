from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # Our payment channels, not the Django Channels package.
    name = "channels"
    label = "payment_channels"
    verbose_name = "Payment channels"
    default_auto_field = "django.db.models.BigAutoField"
