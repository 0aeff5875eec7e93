"""Payout channel adapters: one small class per provider protocol, built from a plain config dict.

``build_adapter(adapter_name, code, config)`` is the single entry point. Each adapter implements
``channels.base.ChannelAdapter`` plus ``fetch_statement(date) -> list[channels.base.StatementLine]``. Provider
codes are mapped only through ``channels.catalogue``. Config keys per adapter: docs/channels.md.
"""

from __future__ import annotations

from typing import Any

from channels.base import CallbackAnswer, ChannelAdapter, ConfigError

from .alipay import AlipayAdapter
from .bankdirect import BankDirectAdapter
from .wechat import WeChatAdapter


def adapter_class(adapter_name: str) -> Any:
    """The adapter class for a ``Channel.adapter`` value. "sandbox" is not here (see channels.sandbox)."""
    if adapter_name == "bankdirect":
        return BankDirectAdapter
    if adapter_name == "alipay":
        return AlipayAdapter
    if adapter_name == "wechat":
        return WeChatAdapter
    raise ConfigError(f"unknown channel adapter {adapter_name!r}")


def build_adapter(adapter_name: str, code: str, config: dict[str, Any]) -> ChannelAdapter:
    """The adapter for a ``Channel.adapter`` value, or ``ConfigError`` when the config cannot make one (a
    missing setting, a key that does not parse, a number that is not one)."""
    cls = adapter_class(adapter_name)
    try:
        adapter: ChannelAdapter = cls(code, config)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"channel {code} ({adapter_name}) config unusable: {exc}") from exc
    return adapter


def callback_answer(adapter_name: str, *, accepted: bool, outcome: str) -> CallbackAnswer:
    """How the provider behind ``adapter_name`` expects its callback to be acknowledged (the adapter's own
    protocol; needs no config)."""
    answer: CallbackAnswer = adapter_class(adapter_name).callback_answer(accepted=accepted, outcome=outcome)
    return answer


__all__ = ["adapter_class", "build_adapter", "callback_answer"]
