"""The partner API's OpenAPI 3 description (drf-spectacular): the contract that ``/api/v1/schema`` serves.

- The auth scheme (``Authorization: Bearer sk_<prefix>_<secret>``) and the request-signing headers.
- One error envelope (``Error``) whose ``code`` is an enum of ``config.catalogue.CODES``; every operation lists
  each status it can answer with, the codes behind each status and an example of each
  (``error_responses``).
- Paths without the trailing slash the URLconf also accepts (``strip_trailing_slash``), ids as integers, and
  OpenAPI links from a created withdrawal to its detail and its cancel (``add_links``): a client, and
  schemathesis's stateful tests, can follow create → get → cancel from the schema alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from config.catalogue import ACTIONS, CODES, error_body

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_<prefix>_<secret>",
            "description": (
                "`Authorization: Bearer sk_<prefix>_<secret>`: an API key of a merchant, shown once when it is "
                "made. Repeated failures lock the key and the address for a while (429 `login_locked`). "
                "A key with request signing on also needs `X-Kamen-Timestamp`, `X-Kamen-Nonce` and "
                "`X-Kamen-Signature` on every request (see the description above and docs/api.md)."
            ),
        }


class StrictSerializerSchema(OpenApiSerializerExtension):
    """A body that refuses fields it does not know says so: ``additionalProperties: false``."""

    target_class = "withdrawals.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


# --- bodies -----------------------------------------------------------------------------------------------


class ActionSerializer(serializers.Serializer):
    """The action to suggest: ``{"code": "retry", "text": "重试"}`` (config.catalogue.ACTIONS)."""

    code = serializers.ChoiceField(
        choices=sorted(ACTIONS), help_text="what the user can do: a key of config.catalogue.ACTIONS"
    )
    text = serializers.CharField(help_text="the same in words, in the request's language")

    class Meta:
        ref_name = "Action"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=sorted(CODES), help_text="stable machine-readable code (decide by this, never by the message)"
    )
    message = serializers.CharField(help_text="the code's words in the negotiated language (Accept-Language)")
    action = ActionSerializer()
    details = serializers.DictField(help_text="what the code refers to: the fields at fault, limits, retry_after")

    class Meta:
        ref_name = "ErrorDetail"


class ErrorSerializer(serializers.Serializer):
    """Every error of the API: ``{"error": {"code", "message", "action", "details"}}``."""

    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


ErrorBody = ErrorSerializer
ActionBody = ActionSerializer()

WalletBody = inline_serializer(
    name="Wallet",
    fields={
        "currency": serializers.CharField(help_text="ISO 4217, e.g. CNY"),
        "available": serializers.IntegerField(help_text="fen that can be withdrawn now"),
        "held": serializers.IntegerField(help_text="fen held by withdrawals in progress"),
        "pending": serializers.IntegerField(help_text="fen of sales still in their freeze window"),
        "reserve": serializers.IntegerField(help_text="fen of the required reserve (保证金)"),
    },
)


# --- errors by operation ----------------------------------------------------------------------------------

# Example details per code (the rest answer with {}), so each example reads like a real answer.
EXAMPLE_DETAILS: dict[str, dict[str, Any]] = {
    "invalid_request": {"speed": ['"fastest" is not a valid choice.']},
    "invalid_amount": {"amount": "must be greater than 0"},
    "idempotency_key_reused": {"withdrawal": 123},
    "quote_expired": {"quoted_fee": 200, "fee": 250},
    "amount_below_minimum": {"minimum": 1000},
    "amount_not_above_fee": {"fee": 200},
    "limit_exceeded": {"limit": "daily_amount", "maximum": 5000000, "used": 4990000},
    "no_channel_for_request": {"account_kind": "bank_card", "speed": "instant", "amount": 100000},
    "payout_account_invalid": {"payout_account": "not found among your accounts"},
    "card_name_mismatch": {"holder_name": "张*", "kyc_name": "李*"},
    "invalid_state": {"status": "paid"},
    "authentication_failed": {"reason": "invalid or revoked API key"},
    "rate_limited": {"retry_after": 12.5},
    "login_locked": {"retry_after": 1800},
    "signature_required": {"missing": ["X-Kamen-Signature"]},
    "signature_invalid": {"reason": "the signature does not match the request"},
    "signature_expired": {"timestamp": 1764400000, "server_time": 1764400400, "window_seconds": 300},
    "signature_replayed": {"nonce": "k3Jd9sLq0PzX8vWb2NcM"},
}

# Every authenticated operation can answer these.
AUTH_CODES = (
    "authentication_failed",
    "signature_required",
    "signature_invalid",
    "signature_expired",
    "signature_replayed",
    "rate_limited",
    "login_locked",
)


def error_example(code: str) -> dict[str, Any]:
    return error_body(code, details=EXAMPLE_DETAILS.get(code, {}), language="en")


def error_responses(*codes: str, auth: bool = True) -> dict[int, OpenApiResponse]:
    """The error answers of one operation: each status with the codes it carries and an example of each."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, *(AUTH_CODES if auth else ())):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        by_status.setdefault(CODES[code].status, [])
        if code not in by_status[CODES[code].status]:
            by_status[CODES[code].status].append(code)
    responses = {}
    for status in sorted(by_status):
        status_codes = by_status[status]
        responses[status] = OpenApiResponse(
            ErrorSerializer,
            description="Error codes: " + ", ".join(f"`{c}` ({CODES[c].en})" for c in status_codes),
            examples=[
                OpenApiExample(c, value=error_example(c), status_codes=[str(status)], response_only=True)
                for c in status_codes
            ],
        )
    return responses


IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,128}$"  # printable ASCII, no space: what any HTTP client sends unchanged
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 128},
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "Your unique key for this request (1–128 printable ASCII characters without spaces, e.g. a UUID or your "
        "own payout id); another key is 400 `invalid_request`, none 400 `idempotency_key_required`. Sending the same "
        "key with the same body again answers 200 with the withdrawal the first request made (nothing is paid "
        "twice); the same key with a different body is refused with 409 `idempotency_key_reused`."
    ),
    examples=[OpenApiExample("uuid", value="9f1c2e4a-5b6d-4e7f-8a9b-0c1d2e3f4a5b")],
)


def id_parameter(what: str) -> OpenApiParameter:
    return OpenApiParameter("id", int, OpenApiParameter.PATH, description=f"the {what}'s id")


# --- hooks (SPECTACULAR_SETTINGS) -------------------------------------------------------------------------


def strip_trailing_slash(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Preprocessing hook: the URLconf accepts ``/withdrawals`` and ``/withdrawals/``; the contract names the
    first. Only the partner API is described (not the schema and docs views themselves)."""
    kept = []
    for path, path_regex, method, callback in endpoints:
        if not path.startswith("/api/v1/"):
            continue
        kept.append((path.rstrip("/") if path != "/" else path, path_regex, method, callback))
    return kept


ID_PATTERN = re.compile(r"\{id\}")


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: the description, integer ids with bounds, and the OpenAPI links that follow a
    created withdrawal."""
    result.setdefault("info", {})["description"] = DESCRIPTION.strip()
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") == "id":
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}
    follow = {
        "GetWithdrawal": ("withdrawals_get", "Fetch the withdrawal just created."),
        "CancelWithdrawal": ("withdrawals_cancel", "Cancel the withdrawal just created (while it may be)."),
        "ListWithdrawalEvents": ("withdrawals_events", "The state changes of the withdrawal just created."),
    }
    operation_ids = {op.get("operationId") for item in result.get("paths", {}).values() for op in item.values()}
    for path_item in result.get("paths", {}).values():
        post = path_item.get("post")
        if not post or post.get("operationId") != "withdrawals_create":
            continue
        for status in ("200", "201"):
            response = post["responses"].get(status)
            if response is None:
                continue
            response["links"] = {
                name: {
                    "operationId": operation_id,
                    "parameters": {"id": "$response.body#/id"},
                    "description": description,
                }
                for name, (operation_id, description) in follow.items()
                if operation_id in operation_ids
            }
    for path_item in result.get("paths", {}).values():
        get = path_item.get("get")
        if get and get.get("operationId") == "payout_accounts_list" and "withdrawals_create" in operation_ids:
            get["responses"]["200"]["links"] = {
                "WithdrawToFirstAccount": {
                    "operationId": "withdrawals_create",
                    "requestBody": {"amount": 10000, "payout_account": "$response.body#/results/0/id"},
                    "description": "Withdraw 100.00 CNY to the first (the default) payout account.",
                }
            }
    return result


DESCRIPTION = """
The partner API of the withdrawal platform: a merchant's systems read the wallet and the payout accounts and
withdraw programmatically. This schema is the contract: every operation lists its request and response bodies and
every error it can answer with. A human-readable guide is `docs/api.md` in the repository.

**Authentication.** `Authorization: Bearer sk_<prefix>_<secret>`: an API key of a merchant, shown once when it
is made. A key with *request signing* on (per key, `manage.py api_key_signing PREFIX`) also signs every request
with its signing secret:

    X-Kamen-Timestamp: <unix seconds, within 300 s of the server's clock>
    X-Kamen-Nonce: <16-64 characters of A-Z a-z 0-9 _ -, never reused>
    X-Kamen-Signature: v1=<hex HMAC-SHA256(signing secret, string-to-sign)>

    string-to-sign = METHOD "\\n" PATH?QUERY "\\n" TIMESTAMP "\\n" NONCE "\\n" hex(SHA-256(body))

where PATH?QUERY is the path and query string exactly as sent and the body is the exact bytes sent (empty for a
GET). Refusals are 401: `signature_required` (a header missing), `signature_expired` (outside the window),
`signature_invalid` (malformed or not matching) and `signature_replayed` (the nonce was used before).
`docs/api_client.py` is a standard-library client that signs.

**Amounts** are integers in fen (1 CNY = 100 fen). **Times** are UTC, ISO 8601 (`2026-11-29T10:15:00.123456Z`).

**Idempotency.** `POST /withdrawals` needs an `Idempotency-Key` header: the same key with the same body answers
200 with the first withdrawal; with a different body 409 `idempotency_key_reused`.

**Errors** are one envelope, whatever went wrong:
`{"error": {"code": "...", "message": "...", "action": {"code": "...", "text": "..."}, "details": {...}}}`.
Decide by `error.code` (the `ErrorDetail.code` enum lists them all) and `error.action.code`; `message` and
`action.text` are words for people, in the language of `Accept-Language` (`zh-Hans` by default, `en`).
An unknown path or id is 404 `not_found` — also when the id belongs to another merchant.

**Rate limit.** Requests per key are limited (429 `rate_limited` with `Retry-After`).
"""
