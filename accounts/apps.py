from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate

from config.crypto import keyring
from config.pii import install_log_masking

from .roles import roles_sync


def _sync_roles(sender: AppConfig, **kwargs: Any) -> None:
    # After every migrate, once Django has created the permissions of all apps, give each role group its
    # permissions (new apps' permissions included). Idempotent.
    if sender.name != "accounts":
        return
    roles_sync()


def check_field_keys(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Refuse to run (check, migrate, runserver) without the personal-data keys outside development."""
    try:
        keyring()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="see README, Configuration", id="accounts.E001")]
    return []


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, sender=self)
        checks.register(check_field_keys)
        # Every log line of every process (web, worker, commands) is written with personal numbers masked.
        install_log_masking()
