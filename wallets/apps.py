from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models, which are loaded only now.
        from accounts.hooks import merchant_opened_listener_register

        from .services import wallet_open

        # Every merchant has its ledger accounts from the start (accounts cannot import wallets).
        merchant_opened_listener_register(wallet_open)
