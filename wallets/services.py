"""Writes to the ledger. Every function runs inside the caller's transaction (or opens one) and locks the
ledger accounts it changes in id order, so concurrent writers never deadlock and never overdraw."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.hooks import merchant_event_publish
from accounts.models import Merchant
from accounts.services import merchant_sale_volume_add
from config.errors import DomainError
from webhooks.services import event_emit

from .models import Entry, LedgerAccount, Transfer
from .webhook_payloads import credit_webhook_data

Kind = LedgerAccount.Kind
log = logging.getLogger(__name__)

# Refund/complaint window by merchant category (days) when the merchant has no override. E-commerce card
# codes are T+1 because buyers may dispute a code that was already redeemed.
CATEGORY_FREEZE_DAYS = {"ecommerce_cards": 1}


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: int  # debit positive, credit negative


def ledger_account_get(
    *, kind: str, merchant_id: int | None = None, scope: str = "", currency: str | None = None
) -> LedgerAccount:
    currency = currency or settings.PLATFORM_CURRENCY
    if merchant_id is not None:
        scope = f"m{merchant_id}"
    lookup = {"kind": kind, "merchant_id": merchant_id, "scope": scope or "platform", "currency": currency}
    account = LedgerAccount.objects.filter(**lookup).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(**lookup)
    except IntegrityError:
        return LedgerAccount.objects.get(**lookup)


def wallet_open(*, merchant_id: int, currency: str | None = None) -> None:
    currency = currency or settings.PLATFORM_CURRENCY
    LedgerAccount.objects.bulk_create(
        [
            LedgerAccount(kind=kind, merchant_id=merchant_id, scope=f"m{merchant_id}", currency=currency)
            for kind in LedgerAccount.MERCHANT_KINDS
        ],
        ignore_conflicts=True,
    )


def _merchant_accounts(merchant_id: int, currency: str | None = None) -> dict[str, LedgerAccount]:
    """A merchant's four ledger accounts in one query (opened on first use)."""
    currency = currency or settings.PLATFORM_CURRENCY
    found = {a.kind: a for a in LedgerAccount.objects.filter(scope=f"m{merchant_id}", currency=currency)}
    if len(found) < len(LedgerAccount.MERCHANT_KINDS):
        wallet_open(merchant_id=merchant_id, currency=currency)
        found = {a.kind: a for a in LedgerAccount.objects.filter(scope=f"m{merchant_id}", currency=currency)}
    return found


def _merchant_account(merchant_id: int, kind: str) -> LedgerAccount:
    return _merchant_accounts(merchant_id)[kind]


def _lock_balances(accounts: Iterable[LedgerAccount]) -> dict[int, int]:
    """Lock ``accounts`` in id order (the order ``ledger_transfer_post`` locks in, so no deadlock) and return
    their balances as of the lock: a reserve top-up computed from an unlocked read could top up twice."""
    ids = sorted({a.pk for a in accounts})
    return dict(
        LedgerAccount.objects.select_for_update(no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", "balance")
    )


def ledger_transfer_post(
    *,
    kind: str,
    reference: str,
    legs: Sequence[Leg],
    description: str = "",
    reverses: Transfer | None = None,
    available_at: datetime | None = None,
    released: bool = False,
) -> Transfer:
    """Post one balanced transfer. Idempotent by ``reference``: posting it again returns the first one."""
    if not legs:
        raise ValueError("a transfer needs legs")
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        if leg.amount == 0:
            raise ValueError("a leg of zero moves nothing")
        if not isinstance(leg.amount, int):
            raise TypeError("amounts are integers in fen")
        totals[leg.account.currency] += leg.amount
    if any(totals.values()):
        raise ValueError(f"transfer {reference} does not balance: {dict(totals)}")

    # No savepoint: a failure here aborts the caller's transaction anyway, and this runs on every money move.
    with transaction.atomic(savepoint=False):
        existing = Transfer.objects.filter(reference=reference).first()
        if existing is not None:
            return existing
        ids = sorted({leg.account.pk for leg in legs})
        locked = {
            a.pk: a for a in LedgerAccount.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
        }
        delta: dict[int, int] = defaultdict(int)
        for leg in legs:
            delta[leg.account.pk] += leg.amount
        for account_id, amount in delta.items():
            account = locked[account_id]
            new_balance = account.balance + account.normal_side * amount
            if account.kind in LedgerAccount.MERCHANT_KINDS and new_balance < 0:
                raise DomainError(
                    "insufficient_funds",
                    details={
                        "account": account.kind,
                        "balance": account.balance,
                        "needed": -account.normal_side * amount,
                    },
                )
            account.balance = new_balance
        transfer = Transfer.objects.create(
            kind=kind,
            reference=reference,
            description=description,
            reverses=reverses,
            available_at=available_at,
            released=released,
        )
        Entry.objects.bulk_create(
            Entry(
                transfer=transfer,
                account=locked[leg.account.pk],
                amount=leg.amount,
                currency=leg.account.currency,
            )
            for leg in legs
        )
        now = timezone.now()
        for account in locked.values():
            account.updated_at = now
        LedgerAccount.objects.bulk_update(locked.values(), ["balance", "updated_at"])
    return transfer


def freeze_days_for(*, category: str, override: int | None) -> int:
    if override is not None:
        return override
    return CATEGORY_FREEZE_DAYS.get(category, 0)


def sale_credit(
    *,
    merchant_id: int,
    order_ref: str,
    amount: int,
    freeze_days: int = 0,
    reserve_required: int = 0,
    now: datetime | None = None,
) -> Transfer:
    """A sale settlement: custody receives the money and the merchant is owed it.

    With a freeze window the money waits in ``pending`` until ``release_due`` moves it; with none it settles
    straight to ``available`` in the same transfer, topping up the required reserve first."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise DomainError("invalid_amount", details={"amount": amount})
    now = now or timezone.now()
    accounts = _merchant_accounts(merchant_id)
    custody = ledger_account_get(kind=Kind.CUSTODY)
    reference = f"sale:{merchant_id}:{order_ref}"
    if freeze_days > 0:
        return ledger_transfer_post(
            kind=Transfer.Kind.SALE_SETTLEMENT,
            reference=reference,
            description=f"sale {order_ref}",
            available_at=now + timedelta(days=freeze_days),
            legs=[Leg(custody, amount), Leg(accounts[Kind.MERCHANT_PENDING], -amount)],
        )
    available, reserve = accounts[Kind.MERCHANT_AVAILABLE], accounts[Kind.MERCHANT_RESERVE]
    with transaction.atomic(savepoint=False):
        # With no reserve to keep there is nothing to top up: no extra read, no extra lock.
        reserve_balance = _lock_balances([custody, available, reserve])[reserve.pk] if reserve_required > 0 else 0
        to_reserve = max(0, min(amount, reserve_required - reserve_balance))
        legs = [Leg(custody, amount)]
        if amount > to_reserve:
            legs.append(Leg(available, -(amount - to_reserve)))
        if to_reserve:
            legs.append(Leg(reserve, -to_reserve))
        # Settled straight to available: nothing is left for release_due to move.
        return ledger_transfer_post(
            kind=Transfer.Kind.SALE_SETTLEMENT,
            reference=reference,
            description=f"sale {order_ref}" + (f", {to_reserve} fen to reserve" if to_reserve else ""),
            available_at=now,
            released=True,
            legs=legs,
        )


def pending_release(*, transfer_id: int, merchant_id: int, reserve_required: int = 0) -> Transfer | None:
    """Move one sale settlement from pending to available, first topping up the merchant's reserve (保证金).

    Returns the release transfer, or None when there is nothing to move: already released, or a sale that
    settled straight to available (those are marked released here, so they are never looked at again)."""
    with transaction.atomic():
        sale = Transfer.objects.select_for_update().get(pk=transfer_id)
        if sale.released:
            return None
        accounts = _merchant_accounts(merchant_id)
        pending, available, reserve = (
            accounts[Kind.MERCHANT_PENDING],
            accounts[Kind.MERCHANT_AVAILABLE],
            accounts[Kind.MERCHANT_RESERVE],
        )
        amount = -sum(sale.entries.filter(account=pending).values_list("amount", flat=True))
        if amount < 0:
            raise ValueError(f"sale settlement {sale.pk} debits the merchant's pending account: {amount}")
        release = None
        if amount > 0:
            reserve_balance = _lock_balances([pending, available, reserve])[reserve.pk]
            to_reserve = max(0, min(amount, reserve_required - reserve_balance))
            legs = [Leg(pending, amount)]
            if amount > to_reserve:
                legs.append(Leg(available, -(amount - to_reserve)))
            if to_reserve:
                legs.append(Leg(reserve, -to_reserve))
            release = ledger_transfer_post(
                kind=Transfer.Kind.RELEASE,
                reference=f"release:{sale.pk}",
                description=f"release of {sale.reference}" + (f", {to_reserve} fen to reserve" if to_reserve else ""),
                legs=legs,
            )
        sale.released = True
        sale.save(update_fields=["released"])
        if release is not None:
            event_emit(
                merchant_id=merchant_id,
                type="credit.available",
                data=credit_webhook_data(sale, order_ref=sale.reference.split(":", 2)[-1], amount=amount),
                occurred_at=release.created_at,
                source_key=f"credit_available:{sale.pk}",
            )
    return release


@dataclass(frozen=True)
class ReleaseRun:
    released: int  # sales moved from pending to available
    # Due sales with nothing to move: settled straight to available (rows written before ``released`` was
    # stored; now marked released) or released meanwhile by a concurrent run.
    skipped: int
    failed: int  # sales that could not be released this run (logged; tried again next run)


def release_due(
    *, now: datetime | None = None, reserve_for: dict[int, int] | None = None, limit: int = 500
) -> ReleaseRun:
    """Release every sale settlement whose freeze window has passed.

    Safe to run any number of times, concurrently too (each sale is locked and released once). One sale that
    cannot be released is logged and counted, and the run goes on with the others: a single bad transfer must
    not keep every merchant's money pending. ``limit`` is the batch size; the run walks all due sales."""
    now = now or timezone.now()
    reserve_for = reserve_for or {}
    released = skipped = failed = 0
    after: tuple[datetime | None, int] | None = None  # (available_at, pk) of the last sale looked at
    while True:
        due = Transfer.objects.filter(
            kind=Transfer.Kind.SALE_SETTLEMENT, released=False, available_at__lte=now
        ).order_by("available_at", "pk")
        if after is not None:  # keyset paging: a sale that failed is not fetched again in this run
            due = due.filter(Q(available_at__gt=after[0]) | Q(available_at=after[0], pk__gt=after[1]))
        batch = list(due.values_list("pk", "available_at")[:limit])
        if not batch:
            break
        after = (batch[-1][1], batch[-1][0])
        owners = dict(
            Entry.objects.filter(transfer_id__in=[pk for pk, _at in batch], account__merchant_id__isnull=False)
            .values_list("transfer_id", "account__merchant_id")
            .distinct()
        )
        for transfer_id, _at in batch:
            merchant_id = owners.get(transfer_id)
            try:
                if merchant_id is None:
                    raise ValueError("no merchant account among its entries")
                reserve = reserve_for.get(merchant_id, 0)
                if pending_release(transfer_id=transfer_id, merchant_id=merchant_id, reserve_required=reserve):
                    released += 1
                else:
                    skipped += 1
            except Exception:  # one bad transfer is logged and retried next run; it must not stop the others
                failed += 1
                log.exception("release of sale settlement %s (merchant %s) failed", transfer_id, merchant_id)
    if failed:
        log.error("release_due: %s released, %s failed (see the errors above)", released, failed)
    return ReleaseRun(released=released, skipped=skipped, failed=failed)


def hold_place(*, merchant_id: int, amount: int, reference: str) -> Transfer:
    """available → held. Raises insufficient_funds when available cannot cover it."""
    accounts = _merchant_accounts(merchant_id)
    return ledger_transfer_post(
        kind=Transfer.Kind.HOLD,
        reference=reference,
        description="withdrawal hold",
        legs=[Leg(accounts[Kind.MERCHANT_AVAILABLE], amount), Leg(accounts[Kind.MERCHANT_HELD], -amount)],
    )


def hold_void(*, merchant_id: int, amount: int, reference: str) -> Transfer:
    """held → available: the withdrawal did not happen; the whole amount, fee included, comes back."""
    accounts = _merchant_accounts(merchant_id)
    return ledger_transfer_post(
        kind=Transfer.Kind.VOID,
        reference=reference,
        description="withdrawal hold released",
        legs=[Leg(accounts[Kind.MERCHANT_HELD], amount), Leg(accounts[Kind.MERCHANT_AVAILABLE], -amount)],
    )


def hold_post(*, merchant_id: int, amount: int, fee: int, reference: str, channel_code: str) -> Transfer:
    """held → channel clearing (net paid out) and platform fee revenue (fee)."""
    legs = [
        Leg(_merchant_account(merchant_id, Kind.MERCHANT_HELD), amount),
        Leg(ledger_account_get(kind=Kind.CHANNEL_CLEARING, scope=f"channel:{channel_code}"), -(amount - fee)),
    ]
    if fee:
        legs.append(Leg(ledger_account_get(kind=Kind.PLATFORM_FEE_REVENUE), -fee))
    return ledger_transfer_post(kind=Transfer.Kind.POST, reference=reference, description="withdrawal paid", legs=legs)


def transfer_reverse(*, transfer: Transfer, reference: str, description: str = "") -> Transfer:
    """A new transfer with every entry of ``transfer`` negated. The original is never edited."""
    entries: Iterable = transfer.entries.select_related("account")
    return ledger_transfer_post(
        kind=Transfer.Kind.REVERSE,
        reference=reference,
        description=description or f"reversal of {transfer.reference}",
        reverses=transfer,
        legs=[Leg(e.account, -e.amount) for e in entries],
    )


def reserve_adjust(*, merchant_id: int, amount: int, reference: str) -> Transfer:
    """Move ``amount`` from available into the reserve (positive) or back out of it (negative)."""
    accounts = _merchant_accounts(merchant_id)
    available, reserve = accounts[Kind.MERCHANT_AVAILABLE], accounts[Kind.MERCHANT_RESERVE]
    return ledger_transfer_post(
        kind=Transfer.Kind.RESERVE,
        reference=reference,
        description="reserve adjustment",
        legs=[Leg(available, amount), Leg(reserve, -amount)],
    )


def merchant_sale_settle(
    *,
    merchant_id: int,
    order_ref: str,
    amount: int,
    buyer: str = "",
    now: datetime | None = None,
    merchant: Any = None,
) -> Transfer:
    """A sale of this merchant settles: pending for the merchant's freeze window (category default or
    override), then available, keeping the required reserve topped up. Risk sees the sale (a merchant event);
    the merchant's settled volume grows (its tier may go up)."""
    now = now or timezone.now()
    if merchant is None or merchant.pk != merchant_id:
        merchant = Merchant.objects.get(pk=merchant_id)
    with transaction.atomic():
        transfer = sale_credit(
            merchant_id=merchant_id,
            order_ref=order_ref,
            amount=amount,
            freeze_days=freeze_days_for(category=merchant.category, override=merchant.settlement_freeze_days),
            reserve_required=merchant.reserve_required,
            now=now,
        )
        event_emit(
            merchant_id=merchant_id,
            type="credit.created",
            data=credit_webhook_data(transfer, order_ref=order_ref, amount=amount),
            occurred_at=transfer.created_at,
            source_key=f"credit:{transfer.pk}",
        )
        merchant_event_publish(
            event={
                "type": "sale_credited",
                "ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "merchant": merchant.risk_subject,
                "order": order_ref,
                "amount": amount,
                "buyer": buyer,
            }
        )
        merchant_sale_volume_add(merchant_id=merchant_id, amount=amount, now=now)
    return transfer
