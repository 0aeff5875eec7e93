"""Partner API v1: thin views over the withdrawal services. Amounts are integer fen."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_auth import ApiClient
from accounts.models import Merchant, PayoutAccount
from accounts.selectors import payout_account_get, payout_accounts_of
from config.catalogue import is_english
from config.errors import DomainError
from wallets.selectors import wallet_balances
from withdrawals.models import Status, Withdrawal
from withdrawals.services import MAX_AMOUNT_FEN, withdrawal_cancel, withdrawal_quote, withdrawal_submit

from .schema import IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_PATTERN, WalletBody, error_responses, id_parameter
from .serializers import (
    PayoutAccountSerializer,
    QuoteRequestSerializer,
    QuoteSerializer,
    WithdrawalCreateSerializer,
    WithdrawalEventSerializer,
    WithdrawalSerializer,
    events_data,
)

MAX_PAGE = 100
MAX_ID = 999_999_999_999_999_999  # the URLs take ids of at most 18 digits


class PartnerApiView(APIView):
    """A view of the partner API. Every time it answers with is UTC (ISO 8601 with ``Z``): its serializers
    declare UtcDateTimeField. The current time zone stays the platform's (Asia/Shanghai), because the business
    rules the API runs count in local days: daily limits, the T+1 batch day, risk's hour-of-day."""

    #: the query parameters each method takes; any other is refused (a typo never silently widens a filter)
    query_parameters: dict[str, frozenset[str]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permission, throttle first
        allowed = self.query_parameters.get(request.method.lower() if request.method else "", frozenset())
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise DomainError("invalid_request", details={name: "unknown query parameter" for name in unknown})


def _merchant(request: Request) -> Merchant:
    client = request.user
    if not isinstance(client, ApiClient):  # the permission class already refused anything else
        raise DomainError("authentication_failed")
    return client.merchant


def _client_ip(request: Request) -> str:
    return request.META.get("REMOTE_ADDR", "")


WithdrawalPage = inline_serializer(
    name="WithdrawalPage",
    fields={
        "results": WithdrawalSerializer(many=True),
        "next_before": serializers.IntegerField(
            allow_null=True, help_text="pass as `before` for the next page; null on the last page"
        ),
    },
)
CREATE_ERRORS = (
    "invalid_request",
    "invalid_amount",
    "idempotency_key_required",
    "idempotency_key_reused",
    "quote_expired",
    "insufficient_funds",
    "amount_below_minimum",
    "amount_not_above_fee",
    "limit_exceeded",
    "no_channel_for_request",
    "kyc_required",
    "card_name_mismatch",
    "payout_account_invalid",
    "merchant_frozen",
)
WITHDRAWAL_EXAMPLE = {
    "id": 1042,
    "order_no": "WD20261129A1B2C3D4E5F6",
    "status": "processing",
    "amount": 100000,
    "fee": 200,
    "net_amount": 99800,
    "currency": "CNY",
    "speed": "standard",
    "payout_account": 7,
    "channel": {"name": "银行直连", "expected_arrival_seconds": 7200},
    "failure_code": "",
    "failure_reason": "",
    "failure_action": None,
    "risk": {"outcome": "allow"},
    "created_at": "2026-11-29T10:15:00.123456Z",
    "updated_at": "2026-11-29T10:15:01.456789Z",
    "paid_at": None,
    "required_approvals": 1,
    "retry_of": None,
    "retried_by": None,
    "events": [
        {"from": "", "to": "submitted", "reason": "申请成功", "actor": "api", "at": "2026-11-29T10:15:00.13Z"},
        {"from": "submitted", "to": "approved", "reason": "风控通过", "actor": "risk", "at": "2026-11-29T10:15:00.2Z"},
        {"from": "approved", "to": "processing", "reason": "已提交", "actor": "worker", "at": "2026-11-29T10:15:01Z"},
    ],
}
PAYOUT_ACCOUNT_EXAMPLE = {
    "id": 7,
    "kind": "bank_card",
    "masked_number": "6222 **** **** 1234",
    "holder_name": "张三",
    "bank_code": "ICBC",
    "bank_name": "工商银行",
    "is_default": True,
    "status": "active",
    "created_at": "2026-11-01T02:00:00Z",
}
PayoutAccountList = inline_serializer(
    name="PayoutAccountList",
    fields={"results": PayoutAccountSerializer(many=True)},
)


class WalletView(PartnerApiView):
    @extend_schema(
        operation_id="wallet_get",
        summary="Balances of the wallet",
        description="The caller's balances in fen: what can be withdrawn now (available), what withdrawals in "
        "progress hold, sales still in their freeze window (pending) and the required reserve.",
        tags=["wallet"],
        responses={200: WalletBody, **error_responses()},
        examples=[
            OpenApiExample(
                "wallet",
                value={"currency": "CNY", "available": 1250000, "held": 100000, "pending": 30000, "reserve": 0},
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request: Request) -> Response:
        b = wallet_balances(merchant_id=_merchant(request).pk)
        return Response(
            {
                "currency": b.currency,
                "available": b.available,
                "held": b.held,
                "pending": b.pending,
                "reserve": b.reserve,
            }
        )


def _int_param(request: Request, name: str, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], None when absent; anything else is 400 invalid_request."""
    if name not in request.query_params:
        return None
    raw = request.query_params[name]
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise DomainError("invalid_request", details={name: f"an integer from {low} to {high}"})
    return int(raw)


def _int_schema(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


SPEEDS = ["instant", "standard", "t1"]


class WithdrawalListView(PartnerApiView):
    query_parameters = {
        "get": frozenset({"status", "speed", "payout_account", "min_amount", "max_amount", "limit", "before"})
    }

    @extend_schema(
        operation_id="withdrawals_list",
        summary="List withdrawals",
        description="The caller's withdrawals, newest first (by id), a page at a time: pass the answer's "
        "`next_before` as `before` for the next page (a keyset cursor: rows created meanwhile never shift a "
        "page). Filters combine (AND). `events` is empty here: fetch one withdrawal, or its events, for them.",
        tags=["withdrawals"],
        parameters=[
            OpenApiParameter("status", str, enum=list(Status.values), description="only withdrawals in this state"),
            OpenApiParameter("speed", str, enum=SPEEDS, description="only withdrawals at this speed"),
            OpenApiParameter(
                "payout_account", _int_schema(1, MAX_ID), description="only withdrawals to this payout account"
            ),
            OpenApiParameter("min_amount", _int_schema(0, MAX_AMOUNT_FEN), description="amount (fen) at least"),
            OpenApiParameter("max_amount", _int_schema(0, MAX_AMOUNT_FEN), description="amount (fen) at most"),
            OpenApiParameter("limit", _int_schema(1, MAX_PAGE), description="page size (default 20)"),
            OpenApiParameter("before", _int_schema(1, MAX_ID), description="the `next_before` of the previous page"),
        ],
        responses={200: WithdrawalPage, **error_responses("invalid_request")},
        examples=[
            OpenApiExample(
                "page",
                value={"results": [{**WITHDRAWAL_EXAMPLE, "events": []}], "next_before": 1042},
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request: Request) -> Response:
        qs = Withdrawal.objects.filter(merchant=_merchant(request)).order_by("-pk")
        for name, choices in (("status", list(Status.values)), ("speed", SPEEDS)):
            if name in request.query_params:  # present but empty is a mistake too, not "any"
                value = request.query_params[name]
                if value not in choices:
                    raise DomainError("invalid_request", details={name: f"one of {', '.join(choices)}"})
                qs = qs.filter(**{name: value})
        if (account := _int_param(request, "payout_account", 1, MAX_ID)) is not None:
            qs = qs.filter(payout_account_id=account)
        if (low := _int_param(request, "min_amount", 0, MAX_AMOUNT_FEN)) is not None:
            qs = qs.filter(amount__gte=low)
        if (high := _int_param(request, "max_amount", 0, MAX_AMOUNT_FEN)) is not None:
            qs = qs.filter(amount__lte=high)
        limit = _int_param(request, "limit", 1, MAX_PAGE) or 20
        if (before := _int_param(request, "before", 1, MAX_ID)) is not None:
            qs = qs.filter(pk__lt=before)
        rows = list(qs[: limit + 1])
        data = WithdrawalSerializer(rows[:limit], many=True).data
        return Response({"results": data, "next_before": rows[limit - 1].pk if len(rows) > limit else None})

    @extend_schema(
        operation_id="withdrawals_create",
        summary="Create a withdrawal",
        description="Withdraw from the available balance to one of your payout accounts. The amount is held at "
        "once; risk decides, and the payout runs in the background: follow `status` (GET the withdrawal). "
        "201 for a new withdrawal; 200 with the same withdrawal when the same `Idempotency-Key` and body "
        "were seen before.",
        tags=["withdrawals"],
        parameters=[IDEMPOTENCY_KEY],
        request=WithdrawalCreateSerializer,
        responses={
            201: OpenApiResponse(WithdrawalSerializer, description="created"),
            200: OpenApiResponse(WithdrawalSerializer, description="a replay: the withdrawal this key made"),
            **error_responses(*CREATE_ERRORS),
        },
        examples=[
            OpenApiExample(
                "standard",
                value={"amount": 100000, "payout_account": 7, "speed": "standard", "expected_fee": 200},
                request_only=True,
            ),
            OpenApiExample("created", value=WITHDRAWAL_EXAMPLE, response_only=True, status_codes=["201", "200"]),
        ],
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise DomainError("idempotency_key_required")
        if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise DomainError(
                "invalid_request", details={"Idempotency-Key": "1 to 128 printable ASCII characters, no spaces"}
            )
        serializer = WithdrawalCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = withdrawal_submit(
            merchant_id=_merchant(request).pk,
            payout_account_id=data["payout_account"],
            amount=data["amount"],
            speed=data["speed"],
            idempotency_key=key,
            expected_fee=data.get("expected_fee"),
            source="api",
            ip=_client_ip(request),
            device=data.get("device", ""),
        )
        body = WithdrawalSerializer(result.withdrawal, context={"with_events": True}).data
        # 201 for a new withdrawal; a replay of the same key answers 200 with the same withdrawal.
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class WithdrawalDetailView(PartnerApiView):
    @extend_schema(
        operation_id="withdrawals_get",
        summary="Get a withdrawal",
        description="One of the caller's withdrawals with its events. Another merchant's id answers 404 "
        "`not_found`, exactly as an id that does not exist.",
        tags=["withdrawals"],
        parameters=[id_parameter("withdrawal")],
        responses={200: WithdrawalSerializer, **error_responses("not_found")},
        examples=[OpenApiExample("withdrawal", value=WITHDRAWAL_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def get(self, request: Request, pk: int) -> Response:
        w = Withdrawal.objects.filter(pk=pk, merchant=_merchant(request)).first()
        if w is None:
            raise DomainError("not_found")
        return Response(WithdrawalSerializer(w, context={"with_events": True}).data)


class WithdrawalCancelView(PartnerApiView):
    @extend_schema(
        operation_id="withdrawals_cancel",
        summary="Cancel a withdrawal",
        description="Cancel a withdrawal that has not gone to a channel yet (pending_review, "
        "awaiting_verification or approved): the held amount, fee included, goes back to available. "
        "Any other state is 409 `invalid_state`. No body.",
        tags=["withdrawals"],
        parameters=[id_parameter("withdrawal")],
        request=None,
        responses={200: WithdrawalSerializer, **error_responses("not_found", "invalid_state")},
        examples=[
            OpenApiExample(
                "cancelled",
                value={**WITHDRAWAL_EXAMPLE, "status": "cancelled", "channel": None},
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        if not Withdrawal.objects.filter(pk=pk, merchant=_merchant(request)).exists():
            raise DomainError("not_found")
        w = withdrawal_cancel(withdrawal_id=pk, merchant_id=_merchant(request).pk, actor_label="api")
        return Response(WithdrawalSerializer(w, context={"with_events": True}).data)


EventList = inline_serializer(name="WithdrawalEventList", fields={"results": WithdrawalEventSerializer(many=True)})


class WithdrawalEventsView(PartnerApiView):
    @extend_schema(
        operation_id="withdrawals_events",
        summary="Events of a withdrawal",
        description="Every state change of one of the caller's withdrawals, oldest first, times in UTC. Another "
        "merchant's id answers 404 `not_found`, exactly as an id that does not exist.",
        tags=["withdrawals"],
        parameters=[id_parameter("withdrawal")],
        responses={200: EventList, **error_responses("not_found")},
        examples=[
            OpenApiExample(
                "events", value={"results": WITHDRAWAL_EXAMPLE["events"]}, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request: Request, pk: int) -> Response:
        w = Withdrawal.objects.filter(pk=pk, merchant=_merchant(request)).first()
        if w is None:
            raise DomainError("not_found")
        return Response({"results": events_data(w)})


class QuoteView(PartnerApiView):
    @extend_schema(
        operation_id="quotes_create",
        summary="Quote a withdrawal's fee",
        description="The fee, the net amount and the arrival time of a withdrawal of `amount` at `speed`, without "
        "making it. Nothing is held or stored: pass the quoted `fee` as `expected_fee` to `POST /withdrawals`.",
        tags=["withdrawals"],
        request=QuoteRequestSerializer,
        responses={
            200: QuoteSerializer,
            **error_responses("invalid_request", "invalid_amount", "payout_account_invalid"),
        },
        examples=[
            OpenApiExample("quote request", value={"amount": 100000, "speed": "standard"}, request_only=True),
            OpenApiExample(
                "quote",
                value={
                    "amount": 100000,
                    "fee": 200,
                    "net_amount": 99800,
                    "speed": "standard",
                    "currency": "CNY",
                    "arrival": "预计 2 小时内到账",
                    "channel_available": True,
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = QuoteRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        kind: str = PayoutAccount.Kind.BANK_CARD
        if "payout_account" in data:
            account = payout_account_get(merchant_id=_merchant(request).pk, account_id=data["payout_account"])
            if account is None:  # somebody else's id answers exactly as an id that does not exist
                raise DomainError("payout_account_invalid", details={"payout_account": "not found among your accounts"})
            kind = account.kind
        quote = withdrawal_quote(amount=data["amount"], speed=data["speed"], account_kind=kind)
        return Response(
            {
                "amount": quote.amount,
                "fee": quote.fee,
                "net_amount": quote.net_amount,
                "speed": quote.speed,
                "currency": quote.currency,
                "arrival": quote.arrival_text_en if is_english() else quote.arrival_text,
                "channel_available": bool(quote.channel_code),
            }
        )


class PayoutAccountListView(PartnerApiView):
    """The caller's payout accounts (the default first, then the newest): the ids ``POST /withdrawals`` takes."""

    @extend_schema(
        operation_id="payout_accounts_list",
        summary="List payout accounts",
        description="The caller's payout accounts, the default first, then the newest: the ids "
        "`POST /withdrawals` takes. Numbers are masked.",
        tags=["payout-accounts"],
        responses={200: PayoutAccountList, **error_responses()},
        examples=[
            OpenApiExample(
                "accounts", value={"results": [PAYOUT_ACCOUNT_EXAMPLE]}, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request: Request) -> Response:
        accounts = payout_accounts_of(merchant_id=_merchant(request).pk)
        return Response({"results": PayoutAccountSerializer(accounts, many=True).data})


class PayoutAccountDetailView(PartnerApiView):
    @extend_schema(
        operation_id="payout_accounts_get",
        summary="Get a payout account",
        tags=["payout-accounts"],
        parameters=[id_parameter("payout account")],
        responses={200: PayoutAccountSerializer, **error_responses("not_found")},
        examples=[OpenApiExample("account", value=PAYOUT_ACCOUNT_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def get(self, request: Request, pk: int) -> Response:
        account = payout_account_get(merchant_id=_merchant(request).pk, account_id=int(pk))
        if account is None:  # somebody else's id answers exactly as an id that does not exist
            raise DomainError("not_found")
        return Response(PayoutAccountSerializer(account).data)


# --- the contract and its docs page (no key needed) ------------------------------------------------------


class SchemaView(SpectacularAPIView):
    """``/api/v1/schema``: the OpenAPI 3 document (YAML by default; ``?format=json`` or
    ``Accept: application/vnd.oai.openapi+json`` for JSON)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []


class DocsView(SpectacularSwaggerSplitView):
    """``/api/v1/docs``: Swagger UI, from our own static files (drf-spectacular-sidecar). The page's script is
    a second request to this view (``?script``), so the site's CSP (scripts from 'self' only) holds here too."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []
    url_name = "api-schema"
    title = "Partner API · 提现平台"


def api_root(request: HttpRequest) -> HttpResponse:
    """``/api/v1/``: the docs page."""
    return redirect("api-docs")
