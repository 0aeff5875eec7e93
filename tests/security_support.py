"""Helpers for tests that pass the step-up the way a person does: the SMS code is read on the phone (the in-process
outbox the test settings use), since our database keeps only a masked text. Staff sessions: tests.staff."""

from __future__ import annotations


def last_sms_code(phone: str | None = None) -> str:
    """The code of the newest SMS sent (to ``phone``), as the merchant reads it on the phone."""
    from risk.sms import memory_sms_provider

    sent = memory_sms_provider().last(phone=phone)
    assert sent is not None, "no SMS was sent"
    return sent.params["code"]
