from __future__ import annotations

from datetime import datetime

from django.db.models import Sum

from risk.learning import CompletedWithdrawal
from wallets.models import LedgerAccount

from .models import HOLDING_STATES, Status, Withdrawal


def withdrawal_risk_ref(w: Withdrawal) -> str:
    """The withdrawal id risk saw (an imported id, else ours)."""
    return str((w.risk_explanation or {}).get("withdrawal_ref") or w.pk)


def withdrawals_completed(since: datetime, until: datetime) -> list[CompletedWithdrawal]:
    """Withdrawals paid in [since, until), as the risk learning loop sees them (wired to ``risk.learning`` in
    ``WithdrawalsConfig.ready()``)."""
    rows = (
        Withdrawal.objects.filter(status=Status.PAID, paid_at__gte=since, paid_at__lt=until)
        .select_related("merchant")
        .only("pk", "paid_at", "client_ip", "device_id", "risk_explanation", "merchant__external_ref", "merchant__id")
    )
    return [
        CompletedWithdrawal(
            withdrawal_ref=withdrawal_risk_ref(w),
            merchant_ref=w.merchant.risk_subject,
            paid_at=w.paid_at or until,
            ip=w.client_ip or "",
            device=w.device_id,
        )
        for w in rows.iterator(chunk_size=1000)
    ]


def withdrawal_ledger_problems() -> list[str]:
    """Each merchant's held balance must equal the amounts of its withdrawals that are still holding money."""
    held = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.MERCHANT_HELD).values_list("merchant_id", "balance")
    )
    expected = dict(
        Withdrawal.objects.filter(status__in=HOLDING_STATES)
        .values("merchant_id")
        .annotate(total=Sum("amount"))
        .values_list("merchant_id", "total")
    )
    problems = []
    for merchant_id in sorted(set(held) | set(expected)):
        if held.get(merchant_id, 0) != (expected.get(merchant_id) or 0):
            problems.append(
                f"merchant {merchant_id}: held balance {held.get(merchant_id, 0)} but withdrawals in progress "
                f"hold {expected.get(merchant_id) or 0}"
            )
    return problems
