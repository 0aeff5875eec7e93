"""Role groups and what each may do. Applied by a data migration and by seed_demo (idempotent)."""

from __future__ import annotations

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "merchant": [],
    "reviewer": [
        "withdrawals.view_withdrawal",
        "withdrawals.review_withdrawal",
        "withdrawals.view_withdrawalevent",
        "accounts.view_merchant",
        "accounts.view_kycrecord",
        "accounts.view_payoutaccount",
    ],
    "senior_reviewer": [
        "withdrawals.view_withdrawal",
        "withdrawals.review_withdrawal",
        "withdrawals.resolve_withdrawal",
        "withdrawals.view_withdrawalevent",
        "withdrawals.view_withdrawalpolicy",
        "withdrawals.change_withdrawalpolicy",
        "accounts.view_merchant",
        "accounts.view_kycrecord",
        "accounts.view_payoutaccount",
    ],
    "compliance_officer": [
        "withdrawals.view_withdrawal",
        "withdrawals.view_withdrawalevent",
        "accounts.view_merchant",
        "accounts.change_merchant",
        "accounts.view_kycrecord",
        "accounts.change_kycrecord",
        "accounts.view_payoutaccount",
        "wallets.view_ledgeraccount",
        "wallets.view_transfer",
        "wallets.view_entry",
        "compliance.view_transactionreport",
        "compliance.file_report",
        "compliance.view_custodyreconciliation",
    ],
    "operations": [
        "withdrawals.view_withdrawal",
        "withdrawals.resolve_withdrawal",
        "withdrawals.view_withdrawalevent",
        "payment_channels.view_channel",
        "payment_channels.change_channel",
        "wallets.view_ledgeraccount",
        "wallets.view_transfer",
    ],
    "support": ["withdrawals.view_withdrawal", "withdrawals.view_withdrawalevent", "accounts.view_merchant"],
}


def roles_sync(apps=None) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.management import create_permissions

    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        objs = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                objs.append(perm)
        group.permissions.set(objs)
