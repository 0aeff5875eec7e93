"""Role groups and what each may do. Applied by a data migration and by seed_demo (idempotent)."""

from __future__ import annotations

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions

# Least privilege, pinned by tests/test_roles.py (role × admin page × action). Personal numbers are masked for
# every role; only ``privacy_officer`` reveals them, each time audited. A channel's protocol config (endpoint,
# keys) is nobody's to edit: ``channel_admin`` proposes and a *second* channel admin approves.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "merchant": [],
    # Review withdrawals (approve / reject in the review console); see the merchant, its KYC and accounts masked.
    "reviewer": [
        "withdrawals.view_withdrawal",
        "withdrawals.review_withdrawal",
        "withdrawals.view_withdrawalevent",
        "accounts.view_merchant",
        "accounts.view_kycrecord",
        "accounts.view_payoutaccount",
    ],
    # A reviewer who also settles stuck payouts and sets the withdrawal policy.
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
    # AML: file / dismiss reports, custody reconciliation, freeze a merchant, change a KYC identity through the
    # service that resets verification (never by editing the record), read the audit trail.
    "compliance_officer": [
        "withdrawals.view_withdrawal",
        "withdrawals.view_withdrawalevent",
        "accounts.view_merchant",
        "accounts.change_merchant",
        "accounts.view_kycrecord",
        "accounts.change_kyc_identity",
        "accounts.view_payoutaccount",
        "accounts.view_auditevent",
        "wallets.view_ledgeraccount",
        "wallets.view_transfer",
        "wallets.view_entry",
        "compliance.view_transactionreport",
        "compliance.review_report",
        "compliance.file_report",
        "compliance.view_custodyreconciliation",
        "compliance.enter_bank_balance",
        "compliance.view_screeninglist",
        "compliance.add_screeninglist",
        "compliance.view_screeninghit",
        "workdays.view_calendarday",
    ],
    # Channels' operational fields (pause / resume, quotas, maintenance windows), alerts, stuck payouts and
    # statement differences, merchants' webhook deliveries (read, replay). Never the protocol config.
    "operations": [
        "withdrawals.view_withdrawal",
        "withdrawals.resolve_withdrawal",
        "withdrawals.view_withdrawalevent",
        "payment_channels.view_channel",
        "payment_channels.change_channel",
        "webhooks.view_webhookdelivery",  # the delivery log of merchants' webhooks, read-only
        "webhooks.replay_webhookdelivery",  # and sending a delivery again
        "webhooks.view_webhookendpoint",  # merchants' endpoints: which fail, which were disabled
        "wallets.view_ledgeraccount",
        "wallets.view_transfer",
        "workdays.view_calendarday",
    ],
    # Answers merchants: sees merchants and withdrawals, masked; nothing that moves money.
    "support": ["withdrawals.view_withdrawal", "withdrawals.view_withdrawalevent", "accounts.view_merchant"],
    # Channel endpoints and key references: proposes changes and approves other channel admins' changes.
    "channel_admin": [
        "payment_channels.view_channel",
        "payment_channels.propose_channel_config",
        "payment_channels.approve_channel_config",
    ],
    # Data protection: the only role that reveals full ID / phone / account numbers (every reveal audited).
    "privacy_officer": [
        "accounts.view_merchant",
        "accounts.view_kycrecord",
        "accounts.view_payoutaccount",
        "accounts.reveal_pii",
        "accounts.view_auditevent",
    ],
}


def roles_sync(apps: Apps | None = None) -> None:
    if apps is None:
        apps = global_apps
    for app_config in apps.get_app_configs():
        # create_permissions() skips an app whose models_module is None, as every app of a migration's state
        # registry is; any truthy marker will do (the stubs allow only a module).
        app_config.models_module = True  # type: ignore[assignment]
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
