from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Sum

from .models import Entry, LedgerAccount, Transfer


@dataclass(frozen=True)
class WalletBalances:
    currency: str
    pending: int
    available: int
    held: int
    reserve: int


def wallet_balances(*, merchant_id: int, currency: str = "CNY") -> WalletBalances:
    rows = dict(LedgerAccount.objects.filter(merchant_id=merchant_id, currency=currency).values_list("kind", "balance"))
    return WalletBalances(
        currency=currency,
        pending=rows.get(LedgerAccount.Kind.MERCHANT_PENDING, 0),
        available=rows.get(LedgerAccount.Kind.MERCHANT_AVAILABLE, 0),
        held=rows.get(LedgerAccount.Kind.MERCHANT_HELD, 0),
        reserve=rows.get(LedgerAccount.Kind.MERCHANT_RESERVE, 0),
    )


def ledger_problems(*, limit: int = 50) -> list[str]:
    """Every broken ledger invariant, precisely worded. Empty means the ledger is consistent."""
    problems: list[str] = []
    unbalanced = (
        Entry.objects.values("transfer_id", "currency").annotate(total=Sum("amount")).exclude(total=0).order_by()
    )
    for row in unbalanced[:limit]:
        problems.append(
            f"transfer {row['transfer_id']} ({row['currency']}) does not sum to zero: off by {row['total']} fen"
        )
    empty = Transfer.objects.filter(entries__isnull=True).values_list("pk", flat=True)[:limit]
    problems.extend(f"transfer {pk} has no entries" for pk in empty)
    sums = dict(Entry.objects.values("account_id").annotate(total=Sum("amount")).values_list("account_id", "total"))
    for account in LedgerAccount.objects.all().iterator():
        expected = account.normal_side * (sums.get(account.pk) or 0)
        if account.balance != expected:
            problems.append(
                f"ledger account {account.pk} ({account}) caches balance {account.balance} "
                f"but its entries give {expected} (difference {account.balance - expected})"
            )
        if account.kind in LedgerAccount.MERCHANT_KINDS and account.balance < 0:
            problems.append(f"ledger account {account.pk} ({account}) is negative: {account.balance}")
        if len(problems) >= limit:
            break
    mixed = Entry.objects.exclude(currency=F("account__currency")).values_list("pk", flat=True)[:limit]
    problems.extend(f"entry {pk} has a currency different from its account" for pk in mixed)
    return problems[:limit]
