"""Partner API v1: thin views over the withdrawal services. Amounts are integer fen."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_auth import ApiClient
from accounts.models import Merchant
from accounts.selectors import payout_account_get, payout_accounts_of
from config.errors import DomainError
from wallets.selectors import wallet_balances
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_cancel, withdrawal_submit

from .schema import ErrorBody, WalletBody
from .serializers import PayoutAccountSerializer, WithdrawalCreateSerializer, WithdrawalSerializer

MAX_PAGE = 100


def _merchant(request: Request) -> Merchant:
    client = request.user
    if not isinstance(client, ApiClient):  # the permission class already refused anything else
        raise DomainError("authentication_failed")
    return client.merchant


def _client_ip(request: Request) -> str:
    return request.META.get("REMOTE_ADDR", "")


ERRORS = {400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 429: ErrorBody}
WithdrawalPage = inline_serializer(
    name="WithdrawalPage",
    fields={"results": WithdrawalSerializer(many=True), "next_before": serializers.IntegerField(allow_null=True)},
)
PayoutAccountList = inline_serializer(
    name="PayoutAccountList",
    fields={"results": PayoutAccountSerializer(many=True)},
)


class WalletView(APIView):
    @extend_schema(operation_id="wallet_get", responses={200: WalletBody, **ERRORS})
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


class WithdrawalListView(APIView):
    @extend_schema(
        operation_id="withdrawals_list",
        parameters=[
            OpenApiParameter("status", str, enum=list(Status.values)),
            OpenApiParameter("limit", int),
            OpenApiParameter("before", int),
        ],
        responses={200: WithdrawalPage, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        qs = Withdrawal.objects.filter(merchant=_merchant(request)).order_by("-created_at", "-pk")
        if status_filter := request.query_params.get("status"):
            if status_filter not in Status.values:
                raise DomainError("invalid_request", details={"status": f"one of {', '.join(Status.values)}"})
            qs = qs.filter(status=status_filter)
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), MAX_PAGE)
            before = int(request.query_params["before"]) if "before" in request.query_params else None
        except ValueError:
            raise DomainError("invalid_request", details={"limit": "limit and before are integers"})
        if before is not None:
            qs = qs.filter(pk__lt=before)
        rows = list(qs[: limit + 1])
        data = WithdrawalSerializer(rows[:limit], many=True).data
        return Response({"results": data, "next_before": rows[limit - 1].pk if len(rows) > limit else None})

    @extend_schema(
        operation_id="withdrawals_create",
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
        request=WithdrawalCreateSerializer,
        responses={201: WithdrawalSerializer, 200: WithdrawalSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise DomainError("idempotency_key_required")
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


class WithdrawalDetailView(APIView):
    @extend_schema(operation_id="withdrawals_get", responses={200: WithdrawalSerializer, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        w = Withdrawal.objects.filter(pk=pk, merchant=_merchant(request)).first()
        if w is None:
            raise DomainError("not_found")
        return Response(WithdrawalSerializer(w, context={"with_events": True}).data)


class WithdrawalCancelView(APIView):
    @extend_schema(operation_id="withdrawals_cancel", request=None, responses={200: WithdrawalSerializer, **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        if not Withdrawal.objects.filter(pk=pk, merchant=_merchant(request)).exists():
            raise DomainError("not_found")
        w = withdrawal_cancel(withdrawal_id=pk, merchant_id=_merchant(request).pk, actor_label="api")
        return Response(WithdrawalSerializer(w, context={"with_events": True}).data)


class PayoutAccountListView(APIView):
    """The caller's payout accounts (the default first, then the newest): the ids ``POST /withdrawals`` takes."""

    @extend_schema(operation_id="payout_accounts_list", responses={200: PayoutAccountList, **ERRORS})
    def get(self, request: Request) -> Response:
        accounts = payout_accounts_of(merchant_id=_merchant(request).pk)
        return Response({"results": PayoutAccountSerializer(accounts, many=True).data})


class PayoutAccountDetailView(APIView):
    @extend_schema(operation_id="payout_accounts_get", responses={200: PayoutAccountSerializer, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        account = payout_account_get(merchant_id=_merchant(request).pk, account_id=int(pk))
        if account is None:  # somebody else's id answers exactly as an id that does not exist
            raise DomainError("not_found")
        return Response(PayoutAccountSerializer(account).data)
