"""The partner API's JSON parser: bodies that cannot hurt the server. Nesting deeper than ``MAX_DEPTH`` is refused
before ``json.loads`` sees it (Python's parser recurses: thousands of levels are a RecursionError, i.e. a 500),
a NUL character anywhere (PostgreSQL refuses it in text) and bodies over ``MAX_BODY_BYTES`` too; each is a
``ParseError``, which the API answers 400 ``invalid_request`` in the error envelope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32
MAX_BODY_BYTES = 64 * 1024


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether arrays / objects nest deeper than ``limit`` (brackets inside strings do not count)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class SafeJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:  # a JSON value: an object, an array or a scalar
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise ParseError(f"JSON body larger than {MAX_BODY_BYTES} bytes")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError("JSON body is not valid text in its encoding") from None
        if json_depth_exceeds(text, MAX_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _has_nul(data):
            raise ParseError("JSON contains a NUL character")
        return data
