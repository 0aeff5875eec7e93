from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models, which are loaded only now.
        from accounts.hooks import merchant_event_listener_register, merchant_fraud_source_register

        from .selectors import risk_fraud_recorded
        from .services import risk_observe

        # accounts sits below risk: it publishes merchant events and asks for fraud records through its hooks.
        merchant_event_listener_register(risk_observe)
        merchant_fraud_source_register(risk_fraud_recorded)
