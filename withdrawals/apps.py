from django.apps import AppConfig


class WithdrawalsConfig(AppConfig):
    name = "withdrawals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models, which are loaded only now.
        from config.metrics import metrics_source_register
        from risk.learning import risk_completed_source_register
        from risk.stepup import stepup_exhausted_register

        from . import tasks  # noqa: F401  (registers the Celery tasks dispatch sends by name)
        from .monitoring import withdrawal_metrics
        from .selectors import withdrawals_completed
        from .services import withdrawal_stepup_subject_exhausted

        # Risk is a lower layer: it learns about withdrawals only through the callbacks we give it.
        stepup_exhausted_register(withdrawal_stepup_subject_exhausted)
        risk_completed_source_register(withdrawals_completed)
        metrics_source_register(withdrawal_metrics)
