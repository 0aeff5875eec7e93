"""The catalogue maps every provider code we know to one reason, class and action."""

from __future__ import annotations

import pytest

from channels.adapters._common import error_for
from channels.base import ChannelRejected, ChannelUnknownOutcome, ErrorAction
from channels.catalogue import CATALOGUE, ErrorClass, lookup, reason_codes

A = ErrorAction


@pytest.mark.parametrize(
    ("provider", "code", "reason", "error_class", "action"),
    [
        ("alipay", "SYSTEM_ERROR", "channel_system_error", ErrorClass.UNKNOWN, A.QUERY),
        (
            "alipay",
            "PAYER_BALANCE_NOT_ENOUGH",
            "channel_funds_insufficient",
            ErrorClass.CHANNEL,
            A.PAUSE_CHANNEL,
        ),
        ("alipay", "EXCEED_LIMIT_SM_AMOUNT", "amount_over_channel_limit", ErrorClass.REROUTE, A.REROUTE),
        ("alipay", "EXCEED_LIMIT_DM_AMOUNT", "channel_daily_limit_reached", ErrorClass.REROUTE, A.REROUTE),
        (
            "alipay",
            "EXCEED_LIMIT_SM_MIN_AMOUNT",
            "amount_below_channel_minimum",
            ErrorClass.REROUTE,
            A.REROUTE,
        ),
        ("alipay", "PAYEE_NOT_EXIST", "invalid_account", ErrorClass.PERMANENT, A.FAIL),
        ("alipay", "PAYEE_USER_INFO_ERROR", "name_mismatch", ErrorClass.PERMANENT, A.FAIL),
        ("alipay", "PRODUCT_NOT_SIGN", "channel_misconfigured", ErrorClass.CHANNEL, A.PAUSE_CHANNEL),
        ("alipay", "NO_AUTH", "channel_misconfigured", ErrorClass.CHANNEL, A.PAUSE_CHANNEL),
        ("alipay", "TIMEOUT", "channel_timeout", ErrorClass.UNKNOWN, A.QUERY),
        ("wechat", "NAME_NOT_CORRECT", "name_mismatch", ErrorClass.PERMANENT, A.FAIL),
        ("wechat", "ACCOUNT_FROZEN", "account_frozen", ErrorClass.PERMANENT, A.FAIL),
        ("wechat", "FREQUENCY_LIMITED", "rate_limited", ErrorClass.TRANSIENT, A.BACKOFF),
        ("wechat", "NO_AUTH", "channel_misconfigured", ErrorClass.CHANNEL, A.PAUSE_CHANNEL),
        ("wechat", "PRODUCT_NOT_SIGN", "channel_misconfigured", ErrorClass.CHANNEL, A.PAUSE_CHANNEL),
        ("wechat", "SYSTEM_ERROR", "channel_system_error", ErrorClass.UNKNOWN, A.QUERY),
        ("wechat", "OVERDUE_CLOSE", "payee_unclaimed", ErrorClass.PERMANENT, A.FAIL),
        ("wechat", "NETWORK_ERROR", "channel_timeout", ErrorClass.UNKNOWN, A.QUERY),
        ("bankdirect", "ACCOUNT_INVALID", "invalid_account", ErrorClass.PERMANENT, A.FAIL),
        ("bankdirect", "ACCOUNT_FROZEN", "account_frozen", ErrorClass.PERMANENT, A.FAIL),
        ("bankdirect", "NAME_MISMATCH", "name_mismatch", ErrorClass.PERMANENT, A.FAIL),
        ("bankdirect", "BANK_RETURNED", "bank_returned", ErrorClass.PERMANENT, A.FAIL),
        ("bankdirect", "SYSTEM_BUSY", "channel_system_error", ErrorClass.TRANSIENT, A.RETRY),
        ("bankdirect", "RATE_LIMITED", "rate_limited", ErrorClass.TRANSIENT, A.BACKOFF),
        (
            "bankdirect",
            "BALANCE_INSUFFICIENT",
            "channel_funds_insufficient",
            ErrorClass.CHANNEL,
            A.PAUSE_CHANNEL,
        ),
        ("bankdirect", "AMOUNT_OVER_LIMIT", "amount_over_channel_limit", ErrorClass.REROUTE, A.REROUTE),
        ("bankdirect", "SIGNATURE_INVALID", "channel_misconfigured", ErrorClass.CHANNEL, A.PAUSE_CHANNEL),
        ("bankdirect", "ORDER_CONFLICT", "order_conflict", ErrorClass.UNKNOWN, A.QUERY),
    ],
)
def test_mapping(provider: str, code: str, reason: str, error_class: ErrorClass, action: ErrorAction) -> None:
    entry = lookup(provider, code)
    assert (entry.reason, entry.error_class, entry.action) == (reason, error_class, action)


def test_unclassified_code_is_queried_never_failed() -> None:
    entry = lookup("alipay", "SOMETHING_NEW")
    assert entry.action == A.QUERY and entry.error_class == ErrorClass.UNKNOWN


def test_actions_follow_classes() -> None:
    allowed = {
        ErrorClass.PERMANENT: {A.FAIL},
        ErrorClass.TRANSIENT: {A.RETRY, A.BACKOFF},
        ErrorClass.UNKNOWN: {A.QUERY},
        ErrorClass.CHANNEL: {A.PAUSE_CHANNEL},
        ErrorClass.REROUTE: {A.REROUTE},
    }
    for entry in CATALOGUE.values():
        assert entry.action in allowed[entry.error_class], entry
        assert entry.reason == entry.reason.lower() and " " not in entry.reason


def test_errors_raised_from_the_catalogue() -> None:
    unknown = error_for("alipay", "SYSTEM_ERROR")
    assert isinstance(unknown, ChannelUnknownOutcome)
    assert unknown.reason_code == "channel_system_error" and unknown.action == A.QUERY
    rejected = error_for("wechat", "NAME_NOT_CORRECT")
    assert isinstance(rejected, ChannelRejected) and rejected.permanent
    assert rejected.reason_code == "name_mismatch" and rejected.provider_code == "NAME_NOT_CORRECT"


def test_reason_codes_listed() -> None:
    codes = reason_codes()
    for code in (
        "invalid_account",
        "account_frozen",
        "name_mismatch",
        "channel_funds_insufficient",
        "amount_over_channel_limit",
        "rate_limited",
        "channel_misconfigured",
        "channel_system_error",
        "payee_unclaimed",
        "bank_returned",
    ):
        assert code in codes
