"""Records kept for at least RECORD_RETENTION_YEARS cannot be deleted at all: the database refuses DELETE of
reports and custody statements (this app), KYC records (accounts), review approvals and withdrawals
(withdrawals) and money transfers (wallets). Ledger entries, withdrawal events and the audit trail are
append-only already. The triggers on other apps' tables are created here, after those apps' migrations."""

from django.db import migrations

from config.dbtriggers import no_delete

KEPT_TABLES = [
    "compliance_transactionreport",
    "compliance_custodyreconciliation",
    "accounts_kycrecord",
    "withdrawals_withdrawalapproval",
    "withdrawals_withdrawal",
    "wallets_transfer",
]


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_report_workflow"),
        ("accounts", "0006_payout_account_unique_by_hash"),
        ("withdrawals", "0009_drop_routing_attempts_append_only"),
        ("wallets", "0002_entries_append_only"),
    ]
    operations = [no_delete(table) for table in KEPT_TABLES]
