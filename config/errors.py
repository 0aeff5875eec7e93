"""One vocabulary of error codes for the API, the pages and the notifications.

Each code has a zh-Hans and an English message and an HTTP status. Services raise ``DomainError(code, ...)``;
the API renders ``{"error": {"code", "message", "details"}}``; pages show ``message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import translation


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    zh: str
    en: str


CATALOGUE: dict[str, ErrorSpec] = {
    # request shape
    "invalid_request": ErrorSpec(400, "请求参数有误", "The request is invalid"),
    "invalid_amount": ErrorSpec(400, "金额必须是大于 0 的整数（单位：分）", "Amount must be a positive integer in fen"),
    "unknown_fields": ErrorSpec(400, "请求包含未知字段", "The request contains unknown fields"),
    "idempotency_key_required": ErrorSpec(400, "缺少 Idempotency-Key 请求头", "The Idempotency-Key header is required"),
    "idempotency_key_reused": ErrorSpec(
        409, "该幂等键已用于另一笔不同的请求", "This idempotency key was already used for a different request"
    ),
    "not_found": ErrorSpec(404, "记录不存在", "Not found"),
    "already_retried": ErrorSpec(
        409, "这笔提现已经重试过一次，请查看重试的那笔提现", "This withdrawal was already retried once; see the retry"
    ),
    "authentication_failed": ErrorSpec(401, "API 密钥无效或已停用", "The API key is invalid or revoked"),
    "permission_denied": ErrorSpec(403, "无权执行此操作", "You are not allowed to do this"),
    "rate_limited": ErrorSpec(429, "请求过于频繁，请稍后再试", "Too many requests, try again later"),
    # money and limits
    "insufficient_funds": ErrorSpec(422, "可提现余额不足", "The available balance is not enough"),
    "amount_below_minimum": ErrorSpec(422, "提现金额低于最低提现金额", "The amount is below the minimum withdrawal"),
    "amount_not_above_fee": ErrorSpec(422, "提现金额不足以支付手续费", "The amount does not cover the fee"),
    "limit_exceeded": ErrorSpec(422, "超出提现限额", "A withdrawal limit would be exceeded"),
    "no_channel_for_request": ErrorSpec(
        422,
        "该收款方式暂不支持此金额或到账速度，请调整金额或选择普通到账",
        "No payment channel takes this amount at this speed to this account; change the amount or the speed",
    ),
    "quote_expired": ErrorSpec(
        409, "手续费已变化，请确认新的报价后再提交", "The fee changed; confirm the new quote and submit again"
    ),
    # identity and accounts
    "kyc_required": ErrorSpec(422, "请先完成实名认证", "Complete real-name verification first"),
    "kyc_mismatch": ErrorSpec(
        422,
        "实名信息核验不一致，请核对姓名、身份证号、银行卡和手机号",
        "The identity details did not verify; check them",
    ),
    "kyc_provider_unavailable": ErrorSpec(
        503, "实名核验服务暂时不可用，请稍后重试", "The identity verification service is unavailable; try again later"
    ),
    "card_name_mismatch": ErrorSpec(
        422,
        "收款账户户名与实名认证姓名不一致",
        "The payout account holder name does not match the verified name",
    ),
    "payout_account_invalid": ErrorSpec(422, "收款账户不可用", "The payout account cannot receive money"),
    "invalid_card_number": ErrorSpec(400, "银行卡号无效（校验位错误）", "The card number is not valid (check digit)"),
    "invalid_id_number": ErrorSpec(400, "身份证号码无效", "The resident ID number is not valid"),
    "merchant_frozen": ErrorSpec(422, "商户账户已冻结，暂不能提现", "The merchant account is frozen"),
    # withdrawal lifecycle
    "invalid_state": ErrorSpec(409, "当前状态不允许此操作", "The withdrawal is not in a state that allows this"),
    "risk_blocked": ErrorSpec(422, "该笔提现未通过风控审核", "The withdrawal was declined by risk control"),
    "same_approver": ErrorSpec(
        409, "大额提现需要另一位审核员复核", "A different reviewer must give the second approval"
    ),
    "four_eyes_required": ErrorSpec(
        409, "该变更需要另一位人员复核，提出人不能批准自己的变更", "A different person must approve this change"
    ),
    "verification_failed": ErrorSpec(422, "验证码错误或已过期", "The verification code is wrong or expired"),
    "verification_locked": ErrorSpec(
        422, "验证失败次数过多，请联系客服", "Too many failed verification attempts; contact support"
    ),
    "verification_exhausted": ErrorSpec(
        422,
        "验证失败次数过多，这笔提现已转人工审核",
        "Too many failed verification attempts; the withdrawal went to manual review",
    ),
    "stepup_resend_too_soon": ErrorSpec(
        429, "验证码发送过于频繁，请稍后再试", "A code was sent moments ago; wait before asking for another"
    ),
    "stepup_send_limit": ErrorSpec(
        429,
        "今日验证码发送次数已达上限，请明天再试或联系客服",
        "The daily limit of verification codes is reached; try tomorrow or contact support",
    ),
    "face_check_unavailable": ErrorSpec(
        422,
        "人脸核验暂不可用，请使用短信或动态口令验证",
        "Face check is not available; use the SMS code or authenticator",
    ),
    "reauthentication_failed": ErrorSpec(
        403,
        "密码或当前验证码不正确，请重新输入",
        "The password or the current verification code is wrong",
    ),
    "login_locked": ErrorSpec(
        429,
        "登录失败次数过多，已临时锁定，请稍后再试或联系客服解锁",
        "Too many failed sign-in attempts; locked for a while — try later or ask support to unlock",
    ),
    "no_channel_available": ErrorSpec(
        503, "暂无可用的出款通道，系统将自动重试", "No payout channel is available now; we will retry"
    ),
    "channel_maintenance": ErrorSpec(503, "出款通道维护中，系统将自动重试", "The payout channel is under maintenance"),
    # payout failure reasons (shown to merchants in plain words)
    "invalid_account": ErrorSpec(422, "收款账户不存在或卡号有误，请核对后重试", "The payee account does not exist"),
    "account_frozen": ErrorSpec(
        422, "收款账户已被冻结或挂失，请更换收款账户", "The payee account is frozen; use another account"
    ),
    "name_mismatch": ErrorSpec(
        422, "收款账户户名与开户名不符，请核对户名", "The holder name does not match the bank's records"
    ),
    "bank_returned": ErrorSpec(422, "银行退票，款项已退回余额", "The bank returned the payment; money is back"),
    "payee_unclaimed": ErrorSpec(422, "收款人未在 24 小时内确认收款", "The payee did not confirm within 24 hours"),
    "channel_timeout": ErrorSpec(503, "通道响应超时，正在确认结果", "The channel timed out; confirming the result"),
    "channel_error": ErrorSpec(503, "通道暂时异常，系统将自动重试", "The channel had a temporary problem"),
    # reason codes the channel adapters emit (channels.catalogue.reason_codes()); merchants see these words
    "payee_not_verified": ErrorSpec(
        422, "收款账户未完成实名认证，请更换已实名的收款账户", "The payee account is not real-name verified"
    ),
    "payee_receive_limit_reached": ErrorSpec(
        422, "收款账户已达到今日收款限额，请明日再试或更换收款账户", "The payee account reached its receiving limit"
    ),
    "channel_risk_rejected": ErrorSpec(
        422, "该笔出款未通过支付通道的风险审核，请更换收款账户或联系客服", "The payment channel declined this payout"
    ),
    "channel_request_invalid": ErrorSpec(
        422, "出款请求信息有误，请核对收款账户信息后重试", "The payout request was invalid; check the payee account"
    ),
    "account_kind_unsupported": ErrorSpec(
        422, "当前通道不支持该类型的收款账户，系统将尝试其他通道", "The channel does not support this account type"
    ),
    "amount_below_channel_minimum": ErrorSpec(
        422, "金额低于通道单笔最低限额，系统将尝试其他通道", "The amount is below the channel's minimum"
    ),
    "amount_over_channel_limit": ErrorSpec(
        422, "金额超过通道单笔限额，系统将尝试其他通道", "The amount is above the channel's per-payout limit"
    ),
    "channel_daily_limit_reached": ErrorSpec(
        503, "通道今日额度已用完，系统将尝试其他通道", "The channel's daily limit is reached"
    ),
    "channel_account_restricted": ErrorSpec(
        503, "出款通道账户受限，系统将切换通道并自动重试", "Our account at the channel is restricted"
    ),
    "channel_funds_insufficient": ErrorSpec(
        503, "出款通道备付金不足，系统将切换通道并自动重试", "Our funding account at the channel is short"
    ),
    "channel_misconfigured": ErrorSpec(
        503, "出款通道配置异常，系统将切换通道并自动重试", "The channel is misconfigured"
    ),
    "channel_response_invalid": ErrorSpec(
        503, "通道返回异常，正在确认结果", "The channel's answer could not be verified; confirming the result"
    ),
    "channel_system_error": ErrorSpec(503, "通道系统繁忙，正在确认结果", "The channel had a system error"),
    "channel_unclassified_error": ErrorSpec(
        503, "通道返回未知错误，正在确认结果", "The channel returned an unknown error; confirming the result"
    ),
    "order_conflict": ErrorSpec(
        409, "通道订单信息冲突，正在确认结果", "The channel holds a different order under this number"
    ),
    "order_no_unsupported": ErrorSpec(
        503, "订单号格式不被该通道支持，系统将尝试其他通道", "The channel does not accept this order number"
    ),
}


def error_message(code: str, *, language: str | None = None) -> str:
    spec = CATALOGUE.get(code)
    if spec is None:
        return code
    lang = language or translation.get_language() or "zh-hans"
    return spec.en if lang.startswith("en") else spec.zh


class DomainError(Exception):
    def __init__(self, code: str, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"unknown error code {code!r}; add it to config.errors.CATALOGUE")
        self.code = code
        self.details = details or {}
        self._message = message
        super().__init__(message or code)

    @property
    def message(self) -> str:
        return self._message or error_message(self.code)

    @property
    def status(self) -> int:
        return CATALOGUE[self.code].status

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}
