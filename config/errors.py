"""Errors by code. The codes, their zh-Hans and English words and the action to suggest are in
``config.catalogue`` (the one catalogue of what users read); this module is how code raises and shows them.

Services raise ``DomainError(code, ...)``; the API renders ``{"error": {"code", "message", "action",
"details"}}`` (``config.catalogue.error_body``); pages show ``message``.
"""

from __future__ import annotations

from typing import Any

from config.catalogue import CODES, code_message

CATALOGUE = CODES  # the name the apps import


def error_message(code: str, *, language: str | None = None) -> str:
    return code_message(code, language=language)


class DomainError(Exception):
    def __init__(self, code: str, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}; add it to config.catalogue.CODES")
        self.code = code
        self.details = details or {}
        self._message = message
        super().__init__(message or code)

    @property
    def message(self) -> str:
        return self._message or error_message(self.code)

    @property
    def status(self) -> int:
        return CODES[self.code].status

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}
