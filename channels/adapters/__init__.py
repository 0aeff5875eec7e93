"""Payout channel adapters: one small class per provider protocol, built from a plain config dict.

``build_adapter(adapter_name, code, config)`` is the single entry point. Each adapter implements
``channels.base.ChannelAdapter`` plus ``fetch_statement(date) -> list[StatementLine]``. Provider codes are
mapped only through ``channels.catalogue``. Config keys per adapter: docs/channels.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from channels.base import ChannelAdapter, PayoutStatus


@dataclass(frozen=True)
class StatementLine:
    order_no: str
    channel_reference: str
    amount: int  # fen
    status: PayoutStatus
    occurred_at: dt.datetime  # timezone-aware


def build_adapter(adapter_name: str, code: str, config: dict[str, Any]) -> ChannelAdapter:
    """The adapter for a ``Channel.adapter`` value. "sandbox" is not built here (see channels.sandbox)."""
    if adapter_name == "bankdirect":
        from .bankdirect import BankDirectAdapter

        return BankDirectAdapter(code, config)
    if adapter_name == "alipay":
        from .alipay import AlipayAdapter

        return AlipayAdapter(code, config)
    if adapter_name == "wechat":
        from .wechat import WeChatAdapter

        return WeChatAdapter(code, config)
    raise ValueError(f"unknown channel adapter {adapter_name!r}")


__all__ = ["StatementLine", "build_adapter"]
