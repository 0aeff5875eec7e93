"""The contract every payout channel adapter fulfils.

Adapters are small classes (one per provider protocol) with three operations: submit a payout under *our*
order number, query a payout by that order number, and parse a provider callback. They know nothing about
merchants or withdrawals: they receive values and return values. Errors say what the caller should do.

Outcome vocabulary (``PayoutStatus``):
- ``succeeded``: the channel says the money reached the payee (final unless a bank return follows).
- ``processing``: accepted, not final yet (poll or wait for a callback).
- ``awaiting_payee``: accepted, waiting for the payee to confirm (WeChat merchant transfer); expires.
- ``failed``: definite failure; ``reason_code`` says why; the payout did not and will not happen.
- ``returned``: paid, then returned by the payee's bank (退票).
- ``not_found``: the channel has no payout under that order number (safe to submit again under the SAME number).

Errors raised by ``submit`` / ``query``:
- ``ChannelUnknownOutcome``: timeout or lost answer; the request may or may not have arrived. Query; never
  resubmit under a new order number.
- ``ChannelRejected``: the channel definitely did not accept the request; ``action`` says what next.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Protocol


class PayoutStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    AWAITING_PAYEE = "awaiting_payee"
    FAILED = "failed"
    RETURNED = "returned"
    NOT_FOUND = "not_found"


class ErrorAction(enum.StrEnum):
    FAIL = "fail"  # permanent: fail the withdrawal with the reason, release the hold (merchant must fix)
    RETRY = "retry"  # transient: retry later with backoff under the same order number
    BACKOFF = "backoff"  # rate limited: retry later with a longer backoff, same order number
    QUERY = "query"  # unknown outcome: query by order number until settled
    REROUTE = "reroute"  # this channel cannot take this payout (limit, unsupported): try another channel
    PAUSE_CHANNEL = "pause_channel"  # channel-side problem (funding, config): pause the channel, alert, retry later


class AccountKind(enum.StrEnum):
    BANK_CARD = "bank_card"
    ALIPAY = "alipay"
    WECHAT = "wechat"


@dataclass(frozen=True)
class PayoutRequest:
    order_no: str  # our idempotent order number; the same for every attempt of one payout
    amount: int  # fen paid to the payee (net of our fee)
    currency: str
    account_kind: AccountKind
    account_number: str  # card number, Alipay login id, or WeChat openid
    holder_name: str
    bank_code: str = ""
    remark: str = ""


@dataclass(frozen=True)
class PayoutResult:
    order_no: str
    status: PayoutStatus
    channel_reference: str = ""  # the provider's own id for the payout
    reason_code: str = ""  # our error vocabulary, for failed / returned
    provider_code: str = ""  # the provider's raw code
    message: str = ""
    amount: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatementLine:
    """One payout on a channel's daily statement (``fetch_statement(date)`` of the protocol adapters)."""

    order_no: str
    channel_reference: str
    amount: int  # fen
    status: PayoutStatus
    occurred_at: dt.datetime  # timezone-aware


class ChannelError(Exception):
    def __init__(
        self,
        message: str,
        *,
        reason_code: str = "channel_error",
        provider_code: str = "",
        action: ErrorAction = ErrorAction.RETRY,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code = reason_code
        self.provider_code = provider_code
        self.action = action


class ChannelRejected(ChannelError):
    """The channel definitely did not accept (or definitely failed) the request."""

    @property
    def permanent(self) -> bool:
        return self.action == ErrorAction.FAIL


class ChannelUnknownOutcome(ChannelError):
    """Timeout or lost answer: the payout may exist. Only a query answer settles it."""

    def __init__(self, message: str, *, provider_code: str = "") -> None:
        super().__init__(message, reason_code="channel_timeout", provider_code=provider_code, action=ErrorAction.QUERY)


class InvalidCallback(Exception):
    """A callback whose signature, timestamp or body does not verify. Never acted on."""


class ConfigError(ValueError):
    """A channel's config is incomplete or unusable (missing setting, unreadable key, unknown adapter): a setup
    problem, not an answer from the channel. Raised when an adapter is built; callers catch this, not any
    ``ValueError`` (which would also hide bugs)."""


@dataclass(frozen=True)
class CallbackAnswer:
    """What we answer a provider's callback, in that provider's protocol: it stops retrying only on the
    acknowledgement it expects, so each adapter owns its answer."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, payload: dict[str, Any]) -> CallbackAnswer:
        return cls(status, json.dumps(payload).encode())


class ChannelAdapter(Protocol):
    code: str

    def submit(self, request: PayoutRequest) -> PayoutResult: ...

    def query(self, order_no: str) -> PayoutResult: ...

    def parse_callback(self, headers: dict[str, str], body: bytes) -> PayoutResult: ...

    @staticmethod
    def callback_answer(*, accepted: bool, outcome: str) -> CallbackAnswer:
        """The acknowledgement of a callback we stored (``accepted``) or refused (signature, freshness, body).
        ``outcome`` is what the callback did (applied, duplicate, ...)."""
        ...
