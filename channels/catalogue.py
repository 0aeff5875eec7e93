"""One catalogue of provider codes: what each means in our vocabulary and what the caller should do.

Every adapter maps every provider code through ``lookup(provider, code)``; nothing else in the codebase
interprets a provider code. An entry says:
- ``reason``: our snake_case reason code (the lead's message vocabulary translates it for people);
- ``error_class``: permanent / transient / unknown / channel / reroute;
- ``action``: the ``ErrorAction`` the caller takes.

A code the catalogue does not know is treated as *unknown* with action QUERY: never fail money on a code
nobody has classified; ask the channel instead (and the unknown code shows up in logs to be added here).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channels.base import ErrorAction

BANKDIRECT = "bankdirect"
ALIPAY = "alipay"
WECHAT = "wechat"
ANY = "*"  # codes we raise ourselves (network), valid for every provider


class ErrorClass(enum.StrEnum):
    PERMANENT = "permanent"  # the payout will never work as asked: fail it, the merchant must fix something
    TRANSIENT = "transient"  # try again later, same order number
    UNKNOWN = "unknown"  # may or may not have happened: query by order number until settled
    CHANNEL = "channel"  # the channel itself is unusable (funding, contract, keys): pause it, alert
    REROUTE = "reroute"  # this channel cannot take this payout (limits, kind): another channel may


@dataclass(frozen=True)
class Entry:
    provider: str
    code: str
    reason: str
    error_class: ErrorClass
    action: ErrorAction

    @property
    def permanent(self) -> bool:
        return self.error_class == ErrorClass.PERMANENT


P, T, U, C, R = (
    ErrorClass.PERMANENT,
    ErrorClass.TRANSIENT,
    ErrorClass.UNKNOWN,
    ErrorClass.CHANNEL,
    ErrorClass.REROUTE,
)
A = ErrorAction

_ROWS: list[tuple[str, str, str, ErrorClass, ErrorAction]] = [
    # --- ours: transport ------------------------------------------------------------------------------------
    (ANY, "TIMEOUT", "channel_timeout", U, A.QUERY),
    (ANY, "NETWORK_ERROR", "channel_timeout", U, A.QUERY),
    (ANY, "BAD_RESPONSE", "channel_response_invalid", U, A.QUERY),  # unsigned / forged / unparseable answer
    # --- bank-direct (docs/bankdirect-protocol.md) ----------------------------------------------------------
    (BANKDIRECT, "SYSTEM_BUSY", "channel_system_error", T, A.RETRY),  # our protocol guarantees: not accepted
    (BANKDIRECT, "MAINTENANCE", "channel_maintenance", R, A.REROUTE),
    (BANKDIRECT, "RATE_LIMITED", "rate_limited", T, A.BACKOFF),
    (BANKDIRECT, "ORDER_CONFLICT", "order_conflict", U, A.QUERY),
    (BANKDIRECT, "INVALID_REQUEST", "channel_request_invalid", P, A.FAIL),
    (BANKDIRECT, "BALANCE_INSUFFICIENT", "channel_funds_insufficient", C, A.PAUSE_CHANNEL),
    (BANKDIRECT, "AMOUNT_OVER_LIMIT", "amount_over_channel_limit", R, A.REROUTE),
    (BANKDIRECT, "DAILY_LIMIT_EXCEEDED", "channel_daily_limit_reached", R, A.REROUTE),
    (BANKDIRECT, "UNSUPPORTED_BANK", "account_kind_unsupported", R, A.REROUTE),
    (BANKDIRECT, "SIGNATURE_INVALID", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (BANKDIRECT, "KEY_UNKNOWN", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (BANKDIRECT, "TIMESTAMP_EXPIRED", "channel_misconfigured", C, A.PAUSE_CHANNEL),  # our clock is off
    (BANKDIRECT, "NONCE_REUSED", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (BANKDIRECT, "ACCOUNT_INVALID", "invalid_account", P, A.FAIL),
    (BANKDIRECT, "ACCOUNT_CLOSED", "invalid_account", P, A.FAIL),
    (BANKDIRECT, "ACCOUNT_FROZEN", "account_frozen", P, A.FAIL),
    (BANKDIRECT, "NAME_MISMATCH", "name_mismatch", P, A.FAIL),
    (BANKDIRECT, "BANK_RETURNED", "bank_returned", P, A.FAIL),
    # --- Alipay alipay.fund.trans.uni.transfer / common.query -----------------------------------------------
    (ALIPAY, "SYSTEM_ERROR", "channel_system_error", U, A.QUERY),  # resubmit only under the same out_biz_no
    (ALIPAY, "isp.unknow-error", "channel_system_error", U, A.QUERY),  # code 20000
    (ALIPAY, "PAYMENT_INFO_INCONSISTENCY", "order_conflict", U, A.QUERY),
    (ALIPAY, "PAYER_BALANCE_NOT_ENOUGH", "channel_funds_insufficient", C, A.PAUSE_CHANNEL),
    (ALIPAY, "EXCEED_LIMIT_SM_AMOUNT", "amount_over_channel_limit", R, A.REROUTE),
    (ALIPAY, "EXCEED_LIMIT_SM_MIN_AMOUNT", "amount_below_channel_minimum", R, A.REROUTE),
    (ALIPAY, "EXCEED_LIMIT_DM_AMOUNT", "channel_daily_limit_reached", R, A.REROUTE),
    (ALIPAY, "EXCEED_LIMIT_MM_AMOUNT", "channel_daily_limit_reached", R, A.REROUTE),
    (ALIPAY, "EXCEED_LIMIT_PERSONAL_SM_AMOUNT", "payee_receive_limit_reached", R, A.REROUTE),
    (ALIPAY, "EXCEED_LIMIT_UNRN_DM_AMOUNT", "payee_receive_limit_reached", R, A.REROUTE),
    (ALIPAY, "PAYEE_NOT_EXIST", "invalid_account", P, A.FAIL),
    (ALIPAY, "PAYEE_CARD_INFO_ERROR", "invalid_account", P, A.FAIL),
    (ALIPAY, "PAYEE_USER_INFO_ERROR", "name_mismatch", P, A.FAIL),
    (ALIPAY, "PAYEE_ACCOUNT_STATUS_ERROR", "account_frozen", P, A.FAIL),
    (ALIPAY, "PERM_AML_NOT_REALNAME_REV", "payee_not_verified", P, A.FAIL),
    (ALIPAY, "INVALID_PARAMETER", "channel_request_invalid", P, A.FAIL),
    (ALIPAY, "PRODUCT_NOT_SIGN", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "NO_AUTH", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "PERMIT_CHECK_PERM_LIMITED", "channel_account_restricted", C, A.PAUSE_CHANNEL),
    (ALIPAY, "PAYER_STATUS_ERROR", "channel_account_restricted", C, A.PAUSE_CHANNEL),
    (ALIPAY, "PAYER_USER_INFO_ERROR", "channel_account_restricted", C, A.PAUSE_CHANNEL),
    (ALIPAY, "isv.invalid-signature", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "isv.missing-signature", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "isv.invalid-app-id", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "isv.invalid-timestamp", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "isv.invalid-method", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "isv.insufficient-isv-permissions", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "aop.invalid-auth-token", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (ALIPAY, "BANK_RETURNED", "bank_returned", P, A.FAIL),
    # --- WeChat Pay v3 merchant transfer: HTTP error codes --------------------------------------------------
    (WECHAT, "SYSTEM_ERROR", "channel_system_error", U, A.QUERY),  # "retry with the same parameters"
    (WECHAT, "FREQUENCY_LIMITED", "rate_limited", T, A.BACKOFF),
    (WECHAT, "NOT_ENOUGH", "channel_funds_insufficient", C, A.PAUSE_CHANNEL),
    (WECHAT, "NO_AUTH", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (WECHAT, "PRODUCT_NOT_SIGN", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (WECHAT, "SIGN_ERROR", "channel_misconfigured", C, A.PAUSE_CHANNEL),
    (WECHAT, "PARAM_ERROR", "channel_request_invalid", P, A.FAIL),
    (
        WECHAT,
        "INVALID_REQUEST",
        "channel_request_invalid",
        P,
        A.FAIL,
    ),  # the adapter queries first: see wechat.py
    (
        WECHAT,
        "ORDER_CONFLICT",
        "order_conflict",
        U,
        A.QUERY,
    ),  # adapter-made: INVALID_REQUEST on an existing bill
    # --- WeChat: fail_reason of a bill in state FAIL / CANCELLED --------------------------------------------
    (WECHAT, "OPENID_INVALID", "invalid_account", P, A.FAIL),
    (WECHAT, "ACCOUNT_NOT_EXIST", "invalid_account", P, A.FAIL),
    (WECHAT, "ACCOUNT_FROZEN", "account_frozen", P, A.FAIL),
    (WECHAT, "NAME_NOT_CORRECT", "name_mismatch", P, A.FAIL),
    (WECHAT, "REAL_NAME_CHECK_FAIL", "payee_not_verified", P, A.FAIL),
    (WECHAT, "TRANSFER_QUOTA_EXCEED", "payee_receive_limit_reached", R, A.REROUTE),
    (WECHAT, "DAY_RECEIVED_QUOTA_EXCEED", "payee_receive_limit_reached", R, A.REROUTE),
    (WECHAT, "TRANSFER_RISK", "channel_risk_rejected", P, A.FAIL),
    (WECHAT, "OVERDUE_CLOSE", "payee_unclaimed", P, A.FAIL),  # not confirmed by the payee within 24 h
    (WECHAT, "CANCELLED", "payee_unclaimed", P, A.FAIL),  # state CANCELLED without a reason: we never cancel
    (WECHAT, "BANK_RETURNED", "bank_returned", P, A.FAIL),  # sandbox extension
]

CATALOGUE: dict[tuple[str, str], Entry] = {(p, c): Entry(p, c, r, k, a) for p, c, r, k, a in _ROWS}


def lookup(provider: str, code: str) -> Entry:
    """The entry for ``code`` from ``provider``; an unclassified code is unknown/QUERY, never a FAIL."""
    return (
        CATALOGUE.get((provider, code))
        or CATALOGUE.get((ANY, code))
        or Entry(provider, code, "channel_unclassified_error", ErrorClass.UNKNOWN, ErrorAction.QUERY)
    )


def reason_codes() -> list[str]:
    """Every reason code an adapter can emit (for docs and the lead's message vocabulary)."""
    adapter_made = {"channel_unclassified_error", "order_no_unsupported", "account_kind_unsupported"}
    return sorted({e.reason for e in CATALOGUE.values()} | adapter_made)
