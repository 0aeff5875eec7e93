from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):  # type: ignore[no-untyped-def]
    # After every migrate, once Django has created the permissions of all apps, give each role group its
    # permissions (new apps' permissions included). Idempotent.
    if sender.name != "accounts":
        return
    from .roles import roles_sync

    roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, sender=self)
