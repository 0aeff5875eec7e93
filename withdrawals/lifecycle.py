"""One step of a withdrawal's life: lock its row, apply a transition, record the event, give the hold back, tell
the merchant.

The merchant and reviewer actions (``withdrawals.services``) and the worker (``withdrawals.payouts``) change a
withdrawal only through these, inside their own durable transaction: the row lock, the state check after it,
the transition, its ``WithdrawalEvent`` and the money all commit together.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import Notification, User
from config.catalogue import PAGE_LANGUAGE, notification_render
from config.errors import DomainError
from wallets.services import hold_void
from webhooks.services import event_emit

from .models import Withdrawal, WithdrawalEvent
from .webhook_payloads import withdrawal_webhook_data


def withdrawal_lock(withdrawal_id: int) -> Withdrawal:
    """The withdrawal, locked until the transaction ends (``not_found`` when there is none)."""
    # FOR NO KEY UPDATE: we never change keys, and it does not block the KEY SHARE locks that inserts of
    # rows referencing this one (events, notifications) take in other transactions.
    try:
        return Withdrawal.objects.select_for_update(no_key=True).get(pk=withdrawal_id)
    except Withdrawal.DoesNotExist:
        raise DomainError("not_found", details={"withdrawal": withdrawal_id})


def withdrawal_event_record(
    w: Withdrawal,
    *,
    from_status: str,
    actor: User | None,
    actor_label: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> WithdrawalEvent:
    """An append-only event: what happened to the withdrawal, who did it and why. A change of status is also a
    webhook event for the merchant's endpoints, in the same transaction (webhooks' outbox)."""
    event = WithdrawalEvent.objects.create(
        withdrawal=w,
        actor=actor,
        actor_label=actor_label,
        from_status=from_status,
        to_status=w.status,
        reason=reason[:255],
        data=data or {},
    )
    if event.to_status != from_status:
        event_emit(
            merchant_id=w.merchant_id,
            type=f"withdrawal.{w.status}",
            data=withdrawal_webhook_data(w, previous_status=from_status),
            occurred_at=event.created_at,
            source_key=f"withdrawal_event:{event.pk}",
        )
    return event


def withdrawal_transition(
    w: Withdrawal,
    transition: str,
    *,
    actor: User | None = None,
    actor_label: str = "system",
    reason: str = "",
    data: dict[str, Any] | None = None,
    extra_fields: tuple[str, ...] = (),
) -> None:
    """Apply an FSM transition to a locked withdrawal, save it and record the event."""
    from_status = w.status
    getattr(w, transition)()
    w.state_changed_at = timezone.now()
    w.stuck_flagged_at = None
    w.save(update_fields=["status", "state_changed_at", "stuck_flagged_at", "updated_at", *extra_fields])
    withdrawal_event_record(w, from_status=from_status, actor=actor, actor_label=actor_label, reason=reason, data=data)


def withdrawal_hold_release(w: Withdrawal, *, suffix: str = "void") -> None:
    """Give the whole held amount, fee included, back to available (failure, rejection, cancel, bank return)."""
    hold_void(merchant_id=w.merchant_id, amount=w.amount, reference=f"withdrawal:{w.pk}:{suffix}")


def withdrawal_notify(w: Withdrawal, template: str, **params: Any) -> None:
    """A message on the merchant's notification page, linking to the withdrawal: the catalogue's ``template``
    (config.catalogue.NOTIFICATIONS) rendered with ``params`` in the pages' language (zh-Hans), whatever
    language the request that caused it asked for."""
    message = notification_render(template, language=PAGE_LANGUAGE, **params)
    Notification.objects.create(
        merchant_id=w.merchant_id,
        kind=message.kind,
        title=message.title,
        body=message.body,
        link=f"/withdrawals/{w.pk}/",
    )
