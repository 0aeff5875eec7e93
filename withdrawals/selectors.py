from __future__ import annotations

from django.db.models import Sum

from wallets.models import LedgerAccount

from .models import HOLDING_STATES, Withdrawal


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
