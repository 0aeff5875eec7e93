"""Template filters for money (``{% load money %}``, registered in settings.TEMPLATES): integer fen in, yuan
text out through ``config.money`` — the pages, the merchant portal's ``merchant_ui`` and the admin pages."""

from __future__ import annotations

from typing import Any

from django import template

from config.money import fen_to_yuan

register = template.Library()


@register.filter
def yuan(value: Any) -> str:
    """1234567 → "12,345.67"; nothing for no amount."""
    if value is None or value == "":
        return ""
    return fen_to_yuan(int(value))


@register.filter
def yuan_plain(value: Any) -> str:
    """For form values: no thousands separators, so the amount parser reads it back unchanged."""
    if value is None or value == "":
        return ""
    return fen_to_yuan(int(value), grouping=False)


@register.filter
def yuan_change(value: Any) -> str:
    """A balance change: 150 → "+¥1.50", -150 → "−¥1.50", 0 or nothing → "" (statements leave it blank)."""
    if value is None or value == "" or int(value) == 0:
        return ""
    amount = int(value)
    return f"{'+' if amount > 0 else '−'}¥{fen_to_yuan(abs(amount))}"
