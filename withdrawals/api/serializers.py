from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from drf_spectacular.drainage import set_override
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from accounts.models import PayoutAccount
from channels.models import Channel
from config.catalogue import action_dict, failure_describe
from withdrawals.attempts import attempts_of
from withdrawals.forms import BANK_NAMES
from withdrawals.models import PayoutAnswer, Speed, Withdrawal
from withdrawals.services import MAX_AMOUNT_FEN

from .schema import ActionSerializer


class UtcDateTimeField(serializers.DateTimeField):
    """A time as the API shows it: UTC, ISO 8601 with ``Z`` (``2026-11-29T10:15:00.123456Z``), whatever the
    server's TIME_ZONE (Asia/Shanghai, used by the pages)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(*args, **kwargs)

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC) if value.tzinfo is not None else super().enforce_timezone(value)


class ApiModelSerializer(serializers.ModelSerializer):
    """A model as the API shows it: every DateTimeField in UTC."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UtcDateTimeField,
    }


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo never silently falls back to a default."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"body": "must be a JSON object"})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({field: "unknown field" for field in unknown})
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.INT)
class StrictIntegerField(serializers.Field):
    """An integer given as a JSON number: no strings, no floats, no booleans."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("must be an integer (fen)")
        return data

    def to_representation(self, value: int) -> int:
        return value


MAX_ID = 999_999_999_999_999_999  # ids in URLs have at most 18 digits
NO_NUL = r"^[^\x00]*$"  # PostgreSQL refuses NUL in text; the JSON parser refuses it (400) before any field


class BoundedIntegerField(StrictIntegerField):
    """A strict integer with bounds the schema states; a value outside them is the service's refusal (e.g.
    ``invalid_amount``), which the schema therefore describes as invalid data."""

    def __init__(self, *, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        set_override(self, "field", {"type": "integer", "minimum": minimum, "maximum": maximum})


class WithdrawalCreateSerializer(StrictSerializer):
    """A withdrawal to make. Fields other than these are refused (400 ``invalid_request``)."""

    amount = BoundedIntegerField(
        minimum=1,
        maximum=MAX_AMOUNT_FEN,
        help_text="fen to take from the available balance, the fee included (1 CNY = 100 fen)",
    )
    payout_account = BoundedIntegerField(
        minimum=1, maximum=MAX_ID, help_text="the id of one of your payout accounts (GET /payout-accounts)"
    )
    speed = serializers.ChoiceField(
        choices=Speed.choices,
        default="standard",
        help_text="instant: within minutes (higher fee); standard: within 2 hours; t1: next working day",
    )
    expected_fee = BoundedIntegerField(
        minimum=0,
        maximum=MAX_AMOUNT_FEN,
        required=False,
        help_text="the fee (fen) you showed your user; if the fee is now different the request is refused "
        "with 409 quote_expired instead of charging a fee nobody agreed to",
    )
    device = set_override(
        serializers.RegexField(
            NO_NUL,
            required=False,
            max_length=128,
            allow_blank=True,
            help_text="your user's device id, for risk checks (no NUL character)",
        ),
        "field",
        {"type": "string", "maxLength": 128, "pattern": NO_NUL},
    )


class QuoteRequestSerializer(StrictSerializer):
    """What a withdrawal would cost, before making it."""

    amount = BoundedIntegerField(minimum=1, maximum=MAX_AMOUNT_FEN, help_text="fen to withdraw, the fee included")
    speed = serializers.ChoiceField(choices=Speed.choices, default="standard")
    payout_account = BoundedIntegerField(
        minimum=1,
        maximum=MAX_ID,
        required=False,
        help_text="one of your payout accounts: the quote is for its kind (bank card by default)",
    )


class QuoteSerializer(serializers.Serializer):
    """A fee quote: pass ``fee`` as ``expected_fee`` when creating the withdrawal, so a changed fee is refused
    (409 ``quote_expired``) instead of charged."""

    amount = serializers.IntegerField(help_text="fen, the fee included")
    fee = serializers.IntegerField(help_text="fen the platform keeps")
    net_amount = serializers.IntegerField(help_text="fen the payee receives")
    speed = serializers.ChoiceField(choices=Speed.choices)
    currency = serializers.CharField()
    arrival = serializers.CharField(help_text="when the money arrives, in words (the request's language)")
    channel_available = serializers.BooleanField(
        help_text="whether a payment channel takes this net amount at this speed now (false: the create would be "
        "refused with no_channel_for_request or amount_not_above_fee)"
    )

    class Meta:
        ref_name = "Quote"


class WithdrawalEventSerializer(serializers.Serializer):
    """One state change of a withdrawal."""

    # "from" is a Python keyword: the field is added under its JSON name in get_fields.
    to = serializers.ChoiceField(
        choices=list(Withdrawal._meta.get_field("status").choices or []), help_text="the state entered"
    )
    reason = serializers.CharField(help_text="why, in words (zh-Hans)")
    actor = serializers.CharField(help_text="who moved it: merchant, api, risk, reviewer, worker, …")
    at = UtcDateTimeField(help_text="when, UTC")

    class Meta:
        ref_name = "WithdrawalEvent"

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {"from": serializers.CharField(help_text="the state left (empty for the first event)"), **fields}


RiskBody = inline_serializer(
    name="WithdrawalRisk",
    fields={
        "outcome": serializers.CharField(
            help_text="the risk decision: allow, review, step_up or block (empty before it was made)"
        )
    },
)


class PayoutAnswerSerializer(serializers.Serializer):
    """What the channel answered (``unknown``: no definite answer; ``refused``: it did not take the request)."""

    outcome = serializers.ChoiceField(choices=PayoutAnswer.Outcome.choices)
    at = UtcDateTimeField()


class PayoutAttemptSerializer(serializers.Serializer):
    """One channel the payout was sent to (``number`` 1, then 2 after a failover…) and its answers in order."""

    number = serializers.IntegerField()
    channel = serializers.CharField(help_text="the channel's display name")
    started_at = UtcDateTimeField()
    answers = PayoutAnswerSerializer(many=True)


class WithdrawalSerializer(ApiModelSerializer):
    """A withdrawal as its merchant sees it."""

    payout_account = serializers.IntegerField(source="payout_account_id", help_text="the payout account's id")
    failure_reason = serializers.SerializerMethodField()
    failure_action = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()
    risk = serializers.SerializerMethodField()
    channel = serializers.SerializerMethodField()
    retried_by = serializers.SerializerMethodField()
    payout_attempts = serializers.SerializerMethodField()

    class Meta:
        model = Withdrawal
        fields = [
            "id",
            "order_no",
            "status",
            "amount",
            "fee",
            "net_amount",
            "currency",
            "speed",
            "payout_account",
            "channel",
            "failure_code",
            "failure_reason",
            "failure_action",
            "risk",
            "created_at",
            "updated_at",
            "paid_at",
            "required_approvals",
            "retry_of",
            "retried_by",
            "payout_attempts",
            "events",
        ]

    def get_failure_reason(self, w: Withdrawal) -> str:
        """The failure's words from the catalogue in the request's language ("" while nothing failed)."""
        failure = failure_describe(w.failure_code, w.failure_detail)
        return failure.message if failure is not None else ""

    @extend_schema_field(ActionSerializer(allow_null=True))
    def get_failure_action(self, w: Withdrawal) -> dict[str, str] | None:
        """What the merchant can do about the failure (null while nothing failed)."""
        failure = failure_describe(w.failure_code, w.failure_detail)
        return action_dict(failure.action) if failure is not None else None

    @extend_schema_field(
        inline_serializer(
            name="WithdrawalChannel",
            fields={"name": serializers.CharField(), "expected_arrival_seconds": serializers.IntegerField()},
            allow_null=True,
        )
    )
    def get_channel(self, w: Withdrawal) -> dict[str, Any] | None:
        """The chosen channel's name and expected arrival — nothing of how it was chosen (our costs, quotas,
        scoring weights, the channels not chosen): the full routing explanation is for staff, in the admin."""
        if not w.channel_code:
            return None
        attempt = w.current_attempt
        if attempt is not None and attempt.channel_code == w.channel_code:
            return {"name": attempt.channel_name, "expected_arrival_seconds": attempt.expected_arrival_seconds}
        channel = Channel.objects.filter(code=w.channel_code).only("name", "expected_arrival_seconds").first()
        if channel is None:
            return None
        return {"name": channel.name, "expected_arrival_seconds": channel.expected_arrival_seconds}

    @extend_schema_field(PayoutAttemptSerializer(many=True))
    def get_payout_attempts(self, w: Withdrawal) -> list[dict[str, Any]]:
        """Each channel the payout was sent to, in order, with what that channel answered and when (its name
        only: how it was chosen stays with staff)."""
        return list(
            PayoutAttemptSerializer(
                [
                    {
                        "number": a.number,
                        "channel": a.channel_name,
                        "started_at": a.started_at,
                        "answers": [{"outcome": x["outcome"], "at": x["at"]} for x in a.answers],
                    }
                    for a in attempts_of(w)
                ],
                many=True,
            ).data
        )

    def get_retried_by(self, w: Withdrawal) -> int | None:
        """The one retry of a failed withdrawal, if it was retried."""
        return Withdrawal.objects.filter(retry_of=w).values_list("pk", flat=True).first()

    @extend_schema_field(RiskBody)
    def get_risk(self, w: Withdrawal) -> dict[str, Any]:
        return {"outcome": w.risk_outcome}

    @extend_schema_field(WithdrawalEventSerializer(many=True))
    def get_events(self, w: Withdrawal) -> list[dict[str, Any]]:
        """The state changes, oldest first (in the answers about one withdrawal; empty in lists)."""
        if not self.context.get("with_events"):
            return []
        return events_data(w)


def events_data(w: Withdrawal) -> list[dict[str, Any]]:
    return list(
        WithdrawalEventSerializer(
            [
                {
                    "from": e.from_status,
                    "to": e.to_status,
                    "reason": e.reason,
                    "actor": e.actor_label,
                    "at": e.created_at,
                }
                for e in w.events.order_by("created_at", "pk")
            ],
            many=True,
        ).data
    )


class PayoutAccountSerializer(ApiModelSerializer):
    """A payout account as its merchant sees it: the number masked only (``6222 **** **** 1234``), never whole.
    The holder name is shown as on the merchant pages (it is the merchant's own account, in their name)."""

    masked_number = serializers.CharField(read_only=True, help_text="the account number, masked (config.pii)")
    bank_name = serializers.SerializerMethodField()

    class Meta:
        model = PayoutAccount
        fields = [
            "id",
            "kind",
            "masked_number",
            "holder_name",
            "bank_code",
            "bank_name",
            "is_default",
            "status",
            "created_at",
        ]
        read_only_fields = fields

    def get_bank_name(self, account: PayoutAccount) -> str:
        """The bank's name for a card ("" for an e-wallet account)."""
        return BANK_NAMES.get(account.bank_code, account.bank_code)
