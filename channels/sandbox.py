"""The in-process sandbox channel: a simulated provider whose book of payouts is the SandboxPayout table.

It follows channels.sandbox_rules, so every path (success, permanent failures, timeouts with and without the
payout happening, delayed settlement, transient errors, bank returns) can be reached on purpose. It writes its
book in its own transactions, as a remote provider would, independent of the caller's.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .base import (
    CallbackAnswer,
    ChannelRejected,
    ChannelUnknownOutcome,
    ErrorAction,
    InvalidCallback,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
)
from .models import SandboxPayout
from .sandbox_rules import DELAYED_SECONDS, Behaviour, behaviour_for

_PERMANENT = {
    Behaviour.INVALID_ACCOUNT: ("invalid_account", "ACCOUNT_NOT_EXIST"),
    Behaviour.ACCOUNT_FROZEN: ("account_frozen", "ACCOUNT_FROZEN"),
    Behaviour.NAME_MISMATCH: ("name_mismatch", "NAME_NOT_MATCH"),
}
# Book states that mean "the provider never accepted this order".
_NOT_ACCEPTED = {"lost", "busy"}


class SandboxAdapter:
    def __init__(self, code: str, config: dict | None = None) -> None:
        self.code = code
        self.config = config or {}

    def _result(self, row: SandboxPayout) -> PayoutResult:
        status = row.status
        if status in _NOT_ACCEPTED:
            return PayoutResult(order_no=row.order_no, status=PayoutStatus.NOT_FOUND)
        if status == "processing" and row.settle_after and timezone.now() >= row.settle_after:
            row.status = status = "succeeded"
            row.save(update_fields=["status"])
        return PayoutResult(
            order_no=row.order_no,
            status=PayoutStatus(status),
            channel_reference=f"SBX{row.pk:010d}",
            reason_code=row.reason_code,
            provider_code=row.reason_code.upper(),
            amount=row.amount,
        )

    def submit(self, request: PayoutRequest) -> PayoutResult:
        behaviour = behaviour_for(request.account_number)
        error: Exception | None = None
        with transaction.atomic():
            row = SandboxPayout.objects.select_for_update().filter(order_no=request.order_no).first()
            if row is not None and row.status not in _NOT_ACCEPTED:
                return self._result(row)  # the same order number again: the provider answers, pays nothing twice
            if row is None:
                try:
                    with transaction.atomic():
                        row = SandboxPayout.objects.create(
                            order_no=request.order_no,
                            channel_code=self.code,
                            amount=request.amount,
                            currency=request.currency,
                            account_number=request.account_number,
                            holder_name=request.holder_name,
                            status="new",
                            submissions=0,
                        )
                except IntegrityError:
                    row = SandboxPayout.objects.select_for_update().get(order_no=request.order_no)
                    if row.status not in _NOT_ACCEPTED:
                        return self._result(row)
            row.submissions += 1
            if behaviour == Behaviour.TRANSIENT_TWICE and row.submissions <= 2:
                row.status = "busy"
                error = ChannelRejected(
                    "system busy", reason_code="channel_error", provider_code="SYSTEM_BUSY", action=ErrorAction.RETRY
                )
            elif behaviour == Behaviour.LOST_REQUEST and row.submissions == 1:
                row.status = "lost"
                error = ChannelUnknownOutcome("read timed out (request lost)")
            elif behaviour in _PERMANENT:
                row.status, row.reason_code = "failed", _PERMANENT[behaviour][0]
            elif behaviour == Behaviour.DELAYED:
                row.status = "processing"
                delay = int(self.config.get("delay_seconds", DELAYED_SECONDS))
                row.settle_after = timezone.now() + timedelta(seconds=delay)
            else:
                row.status = "succeeded"
            row.save()
        # Raised after commit: the provider's book keeps the attempt whatever the caller does next.
        if error is not None:
            raise error
        if behaviour == Behaviour.TIMEOUT_THEN_PAID:
            raise ChannelUnknownOutcome("read timed out (answer lost)")
        return self._result(row)

    def query(self, order_no: str) -> PayoutResult:
        with transaction.atomic():
            row = SandboxPayout.objects.select_for_update().filter(order_no=order_no).first()
            if row is None:
                return PayoutResult(order_no=order_no, status=PayoutStatus.NOT_FOUND)
            return self._result(row)

    @staticmethod
    def callback_answer(*, accepted: bool, outcome: str) -> CallbackAnswer:
        """Never asked (the in-process sandbox sends no callbacks); the bank-direct shape for completeness."""
        return CallbackAnswer.json(200 if accepted else 401, {"received": accepted, "outcome": outcome})

    def parse_callback(self, headers: dict[str, str], body: bytes) -> PayoutResult:
        raise InvalidCallback("the in-process sandbox sends no callbacks")

    # Operations for tests and the demo.
    def bank_return(self, order_no: str) -> None:
        SandboxPayout.objects.filter(order_no=order_no, status="succeeded").update(
            status="returned", reason_code="bank_returned"
        )
