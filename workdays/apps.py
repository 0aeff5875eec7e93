from django.apps import AppConfig


class WorkdaysConfig(AppConfig):
    name = "workdays"
    verbose_name = "工作日历 (working days)"
    default_auto_field = "django.db.models.BigAutoField"
