from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet, Sum

from accounts.models import Merchant, PayoutAccount
from accounts.selectors import payout_accounts_of
from accounts.services import payout_account_check_receivable
from config.errors import DomainError
from risk.learning import CompletedWithdrawal
from risk.models import StepUpChallenge
from wallets.models import LedgerAccount

from .models import HOLDING_STATES, Status, Withdrawal, WithdrawalEvent


@dataclass
class AccountOption:
    """A payout account as the withdraw form offers it: usable, or why not (the catalogue's message)."""

    account: PayoutAccount
    usable: bool
    reason: str


def payout_account_options(*, merchant: Merchant) -> list[AccountOption]:
    """The merchant's payout accounts (default first, then newest), each with whether money may go to it."""
    options = []
    for account in payout_accounts_of(merchant_id=merchant.pk):
        try:
            payout_account_check_receivable(account=account, merchant=merchant)
        except DomainError as exc:
            options.append(AccountOption(account, False, exc.message))
        else:
            options.append(AccountOption(account, True, ""))
    return options


def withdrawal_of_merchant(*, merchant_id: int, withdrawal_id: int) -> Withdrawal | None:
    """One of the merchant's withdrawals with its payout account; None for somebody else's id."""
    return Withdrawal.objects.select_related("payout_account").filter(pk=withdrawal_id, merchant_id=merchant_id).first()


def withdrawals_of_merchant(*, merchant_id: int, statuses: list[str] | None = None) -> QuerySet[Withdrawal]:
    """The merchant's withdrawals, newest first (the model's ordering), optionally in some statuses."""
    rows = Withdrawal.objects.filter(merchant_id=merchant_id).select_related("payout_account")
    return rows if statuses is None else rows.filter(status__in=statuses)


def withdrawal_events(*, withdrawal_id: int) -> list[WithdrawalEvent]:
    """A withdrawal's events in the order they happened."""
    return list(WithdrawalEvent.objects.filter(withdrawal_id=withdrawal_id).order_by("created_at", "id"))


def withdrawal_retried_by(*, withdrawal_id: int) -> Withdrawal | None:
    """The withdrawal that retried this one, if any."""
    return Withdrawal.objects.filter(retry_of_id=withdrawal_id).only("pk", "order_no", "status").first()


def withdrawal_face_session(*, withdrawal_id: int) -> str:
    """The face check session of the withdrawal's latest step-up challenge ('' when there is none)."""
    challenge = StepUpChallenge.objects.filter(subject=f"withdrawal:{withdrawal_id}").order_by("-created_at").first()
    return challenge.destination if challenge is not None else ""


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
