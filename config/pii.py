"""How personal numbers are shown: masked everywhere (pages, admin lists, API, exports, logs).

``6222 **** **** 1234`` (cards), ``310***********0018`` (resident ID), ``138****5678`` (phones). Full numbers are
shown only by the audited reveal in the admin (accounts.services.pii_reveal).

:class:`MaskingLogRecord` masks every log line of the process (installed by accounts' AppConfig): a card, ID or
phone number that reaches a log message or its arguments is written masked, whoever logged it.
"""

from __future__ import annotations

import logging
import re
from typing import Any


def mask_card(number: str) -> str:
    n = "".join((number or "").split())
    if len(n) <= 8:
        return "*" * len(n)
    return f"{n[:4]} **** **** {n[-4:]}"


def mask_id_number(number: str) -> str:
    n = (number or "").strip()
    if len(n) <= 7:
        return "*" * len(n)
    return f"{n[:3]}{'*' * (len(n) - 7)}{n[-4:]}"


def mask_phone(number: str) -> str:
    n = (number or "").strip()
    if len(n) <= 7:
        return "*" * len(n)
    return f"{n[:3]}{'*' * (len(n) - 7)}{n[-4:]}"


def mask_account(number: str, kind: str = "bank_card") -> str:
    """A payout account: a card as a card; an e-wallet id (a phone, an e-mail, an open id) by its shape."""
    n = (number or "").strip()
    digits = n.replace(" ", "")
    if kind == "bank_card" or (digits.isdigit() and len(digits) >= 12):
        return mask_card(n)
    if "@" in n:
        local, _, domain = n.partition("@")
        return f"{local[:1]}***@{domain}"
    if n.isdigit() and len(n) == 11:
        return mask_phone(n)
    if len(n) <= 7:
        return "*" * len(n)
    return f"{n[:3]}***{n[-4:]}"


# Whole tokens only: order numbers (WD2026…A1B2) and hex ids contain digits but are not personal numbers. A number
# also counts when it follows a URL escape (``%3D13800130001`` in a ``next=`` of an access log line, ``%253D`` when
# quoted twice) and when it is grouped by spaces, dashes or ``+`` (a search typed as ``6217 0061 …`` is
# ``q=6217+0061+…`` in the URL, ``%2B`` / ``%20`` / ``%2520`` once the login redirect quotes it again).
_START = r"(?<!%)(?<!%[0-9A-Fa-f])(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2})|(?<=%25[0-9A-Fa-f]{2}))"  # not in an escape
_END = r"(?![0-9A-Za-z])"
_SEP = r"(?:[ +-]|%(?:25)?(?:20|2[Bb]))?"
_ID = re.compile(_START + rf"\d(?:{_SEP}\d){{16}}{_SEP}[\dXx]" + _END)
_CARD = re.compile(_START + rf"\d(?:{_SEP}\d){{11,18}}" + _END)
_PHONE = re.compile(_START + rf"1[3-9]\d(?:{_SEP}\d){{8}}" + _END)
_SEPARATORS = re.compile(r"%(?:25)?(?:20|2[Bb])|[ +-]")


def _digits(match: re.Match[str]) -> str:
    return _SEPARATORS.sub("", match.group(0))


# A UUID (a Celery task id, a request id) is never a personal number, though its all-digit groups joined by dashes
# look like a card number: it is left whole so that log lines stay searchable by it.
_UUID = re.compile(r"([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})")


def mask_text(text: str) -> str:
    """Mask anything in free text that looks like a resident ID, a card number or a mobile number."""
    if not text or not any(c.isdigit() for c in text):
        return text
    if "-" in text and _UUID.search(text):
        parts = _UUID.split(text)  # odd positions are the UUIDs themselves
        return "".join(part if i % 2 else _mask_numbers(part) for i, part in enumerate(parts))
    return _mask_numbers(text)


def _mask_numbers(text: str) -> str:
    text = _ID.sub(lambda m: mask_id_number(_digits(m)), text)
    text = _CARD.sub(lambda m: mask_card(_digits(m)), text)
    return _PHONE.sub(lambda m: mask_phone(_digits(m)), text)


class MaskingLogRecord(logging.LogRecord):
    """A log record whose message is masked once formatted (arguments included)."""

    def getMessage(self) -> str:
        return mask_text(super().getMessage())


_installed: dict[str, Any] = {}


def install_log_masking() -> None:
    """Make every log record of this process mask personal numbers (idempotent)."""
    if _installed.get("factory") is not None and logging.getLogRecordFactory() is _installed["factory"]:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not isinstance(record, MaskingLogRecord) and type(record) is logging.LogRecord:
            record.__class__ = MaskingLogRecord
        return record

    logging.setLogRecordFactory(factory)
    _installed["factory"] = factory


def mask_any(value: str) -> str:
    """A personal number of unknown kind, masked by its shape (history diffs, generic displays)."""
    v = (value or "").strip()
    if not v:
        return ""
    compact = v.replace(" ", "")
    if len(compact) == 18 and compact[:17].isdigit():
        return mask_id_number(compact)
    if compact.isdigit() and len(compact) == 11:
        return mask_phone(compact)
    if compact.isdigit() and len(compact) >= 12:
        return mask_card(compact)
    return mask_account(v, kind="")
