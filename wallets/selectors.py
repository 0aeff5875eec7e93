from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


# --- the merchant's statement (资金流水) -------------------------------------------------------------------
MERCHANT_BUCKETS = {
    LedgerAccount.Kind.MERCHANT_PENDING: "pending",
    LedgerAccount.Kind.MERCHANT_AVAILABLE: "available",
    LedgerAccount.Kind.MERCHANT_HELD: "held",
    LedgerAccount.Kind.MERCHANT_RESERVE: "reserve",
}


@dataclass(frozen=True)
class StatementLine:
    """One money movement of a merchant: how each of its balances changed (positive: up) and where they stood
    after it. ``reference`` is the business reference (``sale:…``, ``withdrawal:42:hold``)."""

    at: datetime
    transfer_id: int
    kind: str
    kind_label: str
    reference: str
    description: str
    pending: int
    available: int
    held: int
    reserve: int
    available_after: int
    total_after: int

    @property
    def total(self) -> int:
        return self.pending + self.available + self.held + self.reserve

    @property
    def withdrawal_id(self) -> int | None:
        parts = self.reference.split(":")
        return int(parts[1]) if len(parts) >= 2 and parts[0] == "withdrawal" and parts[1].isdigit() else None


@dataclass(frozen=True)
class Statement:
    lines: list[StatementLine]
    opening_available: int
    opening_total: int
    closing_available: int
    closing_total: int


def merchant_statement(
    *,
    merchant_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: list[str] | None = None,
    currency: str = "CNY",
) -> Statement:
    """Every ledger movement of the merchant's accounts in [since, until), oldest first, with the running available
    and total balance after each one. ``kinds`` (transfer kinds) filters the lines shown, never the running
    balances, which always include every movement."""
    accounts = dict(
        LedgerAccount.objects.filter(
            merchant_id=merchant_id, currency=currency, kind__in=list(MERCHANT_BUCKETS)
        ).values_list("pk", "kind")
    )
    entries = Entry.objects.filter(account_id__in=list(accounts))
    before = entries.filter(transfer__created_at__lt=since) if since is not None else entries.none()
    opening = {MERCHANT_BUCKETS[LedgerAccount.Kind(k)]: 0 for k in accounts.values()}
    for account_id, amount in before.values("account_id").annotate(s=Sum("amount")).values_list("account_id", "s"):
        opening[MERCHANT_BUCKETS[LedgerAccount.Kind(accounts[account_id])]] = -(amount or 0)  # credit-normal
    window = entries
    if since is not None:
        window = window.filter(transfer__created_at__gte=since)
    if until is not None:
        window = window.filter(transfer__created_at__lt=until)
    moves: dict[int, dict[str, int]] = {}
    transfers: dict[int, tuple[datetime, str, str, str]] = {}
    rows = window.order_by("transfer__created_at", "transfer_id", "pk").values_list(
        "transfer_id",
        "account_id",
        "amount",
        "transfer__created_at",
        "transfer__kind",
        "transfer__reference",
        "transfer__description",
    )
    for transfer_id, account_id, amount, at, kind, reference, description in rows:
        bucket = MERCHANT_BUCKETS[LedgerAccount.Kind(accounts[account_id])]
        change = moves.setdefault(transfer_id, {"pending": 0, "available": 0, "held": 0, "reserve": 0})
        change[bucket] -= amount  # merchant accounts are credit-normal: a credit (negative entry) raises them
        transfers.setdefault(transfer_id, (at, kind, reference, description))
    labels = dict(Transfer.Kind.choices)
    available = opening.get("available", 0)
    total = sum(opening.values())
    opening_available, opening_total = available, total
    lines = []
    for transfer_id, change in moves.items():
        at, kind, reference, description = transfers[transfer_id]
        available += change["available"]
        total += sum(change.values())
        if kinds and kind not in kinds:
            continue
        lines.append(
            StatementLine(
                at=at,
                transfer_id=transfer_id,
                kind=kind,
                kind_label=labels.get(kind, kind),
                reference=reference,
                description=description,
                available_after=available,
                total_after=total,
                **change,
            )
        )
    return Statement(
        lines=lines,
        opening_available=opening_available,
        opening_total=opening_total,
        closing_available=available,
        closing_total=total,
    )
