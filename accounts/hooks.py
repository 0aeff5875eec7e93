"""What accounts tells the layers above it, and asks of them, without importing them.

accounts is the lowest business layer: wallets, risk and withdrawals import it, never the other way round. A
higher layer that must react to a merchant (open its wallet, observe its events) or answer for one (its fraud
record) registers a callback here in its ``AppConfig.ready()``. Callbacks run synchronously, in the caller's
transaction, in the order the apps are installed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

MerchantEvent = dict[str, Any]
EventListener = Callable[..., None]  # called as listener(event=...)
OpenedListener = Callable[..., None]  # called as listener(merchant_id=...)
FraudSource = Callable[..., bool]  # called as source(merchant_ref=..., since=...)

_event_listeners: list[EventListener] = []
_opened_listeners: list[OpenedListener] = []
_fraud_sources: list[FraudSource] = []


def merchant_event_listener_register(listener: EventListener) -> None:
    """``listener(event=...)`` sees every merchant event: registration, login, phone change, card bound, sale
    credited (risk observes them)."""
    if listener not in _event_listeners:
        _event_listeners.append(listener)


def merchant_event_publish(*, event: MerchantEvent) -> None:
    for listener in _event_listeners:
        listener(event=event)


def merchant_opened_listener_register(listener: OpenedListener) -> None:
    """``listener(merchant_id=...)`` runs when a merchant is created, before its first user (wallets opens its
    ledger accounts)."""
    if listener not in _opened_listeners:
        _opened_listeners.append(listener)


def merchant_opened_publish(*, merchant_id: int) -> None:
    for listener in _opened_listeners:
        listener(merchant_id=merchant_id)


def merchant_fraud_source_register(source: FraudSource) -> None:
    """``source(merchant_ref=..., since=...)`` says whether fraud (or a review rejection) was recorded against
    the merchant since then (risk's labels)."""
    if source not in _fraud_sources:
        _fraud_sources.append(source)


def merchant_fraud_recorded(*, merchant_ref: str, since: datetime) -> bool:
    return any(source(merchant_ref=merchant_ref, since=since) for source in _fraud_sources)
