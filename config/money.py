"""The one money formatter: integer fen in, yuan text out, through ``Decimal`` — never a float.

Amounts live as integer fen everywhere; this is the edge where people read them: the pages (the ``yuan``
template filter), the admin, notifications, log lines and provider protocols that want yuan with two decimals.
"""

from __future__ import annotations

from decimal import Decimal


def fen_decimal(fen: int) -> Decimal:
    """Exactly ``fen / 100`` as a Decimal, at any size (built from the digits: no context rounding)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"money is integer fen, not {type(fen).__name__}")
    sign, digits, _ = Decimal(fen).as_tuple()
    return Decimal((sign, digits, -2))


def fen_to_yuan(fen: int, *, grouping: bool = True) -> str:
    """1 → "0.01", 123456789 → "1,234,567.89", -5 → "-0.05"; ``grouping=False`` → "1234567.89" (form values
    and provider protocols)."""
    return format(fen_decimal(fen), ",.2f" if grouping else ".2f")


def yuan_label(fen: int | None, *, empty: str = "—") -> str:
    """``¥1,234.56`` as the admin and log lines show it; ``empty`` for no amount."""
    return empty if fen is None else f"¥{fen_to_yuan(fen)}"
