"""The one catalogue of what users read by code: API error codes, withdrawal failure reasons and notification
templates, each in zh-Hans and English with the action to suggest.

- ``CODES``: every code the API answers with (``{"error": {"code", "message", "action", "details"}}``), every
  withdrawal ``failure_code`` (shown to merchants as the failure reason) and every reason a channel adapter
  emits (``channels.catalogue`` maps each provider's codes onto these).
- ``ACTIONS``: what the user can do about it — a short, stable list (``retry``, ``change_payout_account``,
  ``contact_support``, ``complete_kyc``, ...). Pages decide by action, never by special-casing a code.
- ``NOTIFICATIONS``: the merchant inbox messages by template name; services render them from here.

Language: an explicit ``language``, else the active Django language (the partner API negotiates
``Accept-Language``; the pages and the admin are zh-Hans). Any ``en*`` language is English, anything else
zh-Hans. Money in messages goes through ``config.money`` (Decimal, never float).

``tests/test_catalogue.py`` walks the apps' code and fails when a code or a notification template is used
without an entry here.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from django.utils import translation

from config.money import fen_to_yuan

PAGE_LANGUAGE = "zh-hans"  # the merchant pages, the admin and the stored notification texts


def is_english(language: str | None = None) -> bool:
    lang = language or translation.get_language() or PAGE_LANGUAGE
    return lang.lower().startswith("en")


# --- actions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    zh: str
    en: str


ACTIONS: dict[str, Action] = {
    "retry": Action("重试", "Try again"),
    "retry_later": Action("稍后重试", "Try again later"),
    "wait": Action("无需操作，系统会自动处理", "Nothing to do; the platform handles it"),
    "none": Action("无需操作", "Nothing to do"),
    "change_payout_account": Action("更换收款账户", "Use another payout account"),
    "check_payout_account": Action("核对收款账户信息", "Check the payout account details"),
    "change_amount": Action("调整提现金额", "Change the amount"),
    "confirm_quote": Action("确认新的手续费后重新提交", "Confirm the new fee and submit again"),
    "complete_kyc": Action("完成实名认证", "Complete real-name verification"),
    "verify_identity": Action("完成身份验证", "Complete the verification"),
    "contact_support": Action("联系客服", "Contact support"),
    "fix_request": Action("修正请求后重试", "Correct the request and send it again"),
    "check_credentials": Action("核对 API 密钥", "Check the API key"),
    "check_signature": Action(
        "按接口文档核对签名方法和本机时钟，用新的随机数重新签名",
        "Check the signing steps in the API docs and your clock, then sign again with a new nonce",
    ),
    "view_retry": Action("查看重试的那笔提现", "See the retry"),
    "refresh": Action("刷新查看最新状态", "Reload to see the current state"),
    "ask_colleague": Action("请另一位同事复核", "Ask a colleague to approve"),
    "check_webhook_endpoint": Action(
        "检查接收地址能否访问并返回 2xx，然后重新发送", "Check that the endpoint answers 2xx, then replay"
    ),
}


def action_text(action: str, *, language: str | None = None) -> str:
    spec = ACTIONS.get(action)
    if spec is None:
        return ""
    return spec.en if is_english(language) else spec.zh


def action_dict(action: str, *, language: str | None = None) -> dict[str, str]:
    """The API's action object: ``{"code": "retry", "text": "重试"}``."""
    return {"code": action, "text": action_text(action, language=language)}


# --- codes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSpec:
    status: int  # HTTP status when the API answers with this code
    zh: str
    en: str
    action: str  # a key of ACTIONS
    shows_detail: bool = False  # as a failure reason, the free-text detail (a reviewer's words) follows


S = CodeSpec

CODES: dict[str, CodeSpec] = {
    # webhooks: registering an endpoint, and why an attempt to deliver to it failed (the delivery log's words)
    "webhook_url_invalid": S(
        400,
        "接收地址无效：须为 https:// 开头的完整网址，且不含用户名和密码",
        "The endpoint URL is invalid: use a full https:// URL without a user name or password",
        "fix_request",
    ),
    "webhook_url_not_allowed": S(
        400,
        "接收地址不能指向本机或内网地址",
        "The endpoint URL may not point at a loopback or private address",
        "fix_request",
    ),
    "webhook_endpoint_disabled": S(
        409, "该接收地址已停用，请先启用", "The endpoint is disabled; enable it first", "check_webhook_endpoint"
    ),
    "webhook_timeout": S(504, "接收地址响应超时", "The endpoint did not answer in time", "check_webhook_endpoint"),
    "webhook_connection_failed": S(
        502, "无法连接到接收地址", "Could not connect to the endpoint", "check_webhook_endpoint"
    ),
    "webhook_http_error": S(
        502, "接收地址返回了非 2xx 状态码", "The endpoint answered with a non-2xx status", "check_webhook_endpoint"
    ),
    "webhook_redirect_refused": S(
        502,
        "接收地址返回了重定向，平台不跟随重定向",
        "The endpoint answered with a redirect, which is never followed",
        "check_webhook_endpoint",
    ),
    "webhook_address_not_allowed": S(
        502,
        "接收地址解析到本机或内网地址，已拒绝发送",
        "The endpoint resolves to a loopback or private address; nothing was sent",
        "check_webhook_endpoint",
    ),
    # request shape
    "invalid_request": S(400, "请求参数有误", "The request is invalid", "fix_request"),
    "invalid_amount": S(
        400, "金额必须是大于 0 的整数（单位：分）", "Amount must be a positive integer in fen", "change_amount"
    ),
    "unknown_fields": S(400, "请求包含未知字段", "The request contains unknown fields", "fix_request"),
    "idempotency_key_required": S(
        400, "缺少 Idempotency-Key 请求头", "The Idempotency-Key header is required", "fix_request"
    ),
    "idempotency_key_reused": S(
        409,
        "该幂等键已用于另一笔不同的请求",
        "This idempotency key was already used for a different request",
        "fix_request",
    ),
    "not_found": S(404, "记录不存在", "Not found", "fix_request"),
    "already_retried": S(
        409,
        "这笔提现已经重试过一次，请查看重试的那笔提现",
        "This withdrawal was already retried once; see the retry",
        "view_retry",
    ),
    "settlement_no_account": S(
        409,
        "没有可用的默认收款账户，无法自动结算：请先绑定本人名下的银行卡",
        "No usable default payout account for automatic settlement: bind a card in your own name first",
        "fix_request",
    ),
    "authentication_failed": S(401, "API 密钥无效或已停用", "The API key is invalid or revoked", "check_credentials"),
    # request signing (accounts.api_auth): a key with signing on needs every request signed
    "signature_required": S(
        401,
        "该 API 密钥要求请求签名：请附带 X-Kamen-Timestamp、X-Kamen-Nonce 和 X-Kamen-Signature 请求头",
        "This API key requires signed requests: send X-Kamen-Timestamp, X-Kamen-Nonce and X-Kamen-Signature",
        "check_signature",
    ),
    "signature_invalid": S(
        401, "请求签名不正确或格式有误", "The request signature is malformed or does not match", "check_signature"
    ),
    "signature_expired": S(
        401,
        "请求时间戳与服务器时间相差超过 5 分钟，请校准时钟后重新签名",
        "The request timestamp is more than 5 minutes from the server's clock; fix the clock and sign again",
        "check_signature",
    ),
    "signature_replayed": S(
        401,
        "该随机数（nonce）已被使用，请求被视为重放",
        "This nonce was already used; the request is refused as a replay",
        "check_signature",
    ),
    "permission_denied": S(403, "无权执行此操作", "You are not allowed to do this", "contact_support"),
    "rate_limited": S(429, "请求过于频繁，请稍后再试", "Too many requests, try again later", "retry_later"),
    "internal_error": S(500, "服务器内部错误，请稍后重试", "Internal server error; try again later", "retry_later"),
    # money and limits
    "insufficient_funds": S(422, "可提现余额不足", "The available balance is not enough", "change_amount"),
    "amount_below_minimum": S(
        422, "提现金额低于最低提现金额", "The amount is below the minimum withdrawal", "change_amount"
    ),
    "amount_not_above_fee": S(422, "提现金额不足以支付手续费", "The amount does not cover the fee", "change_amount"),
    "limit_exceeded": S(422, "超出提现限额", "A withdrawal limit would be exceeded", "change_amount"),
    "no_channel_for_request": S(
        422,
        "该收款方式暂不支持此金额或到账速度，请调整金额或选择普通到账",
        "No payment channel takes this amount at this speed to this account; change the amount or the speed",
        "change_amount",
    ),
    "quote_expired": S(
        409,
        "手续费已变化，请确认新的报价后再提交",
        "The fee changed; confirm the new quote and submit again",
        "confirm_quote",
    ),
    # identity and accounts
    "kyc_required": S(422, "请先完成实名认证", "Complete real-name verification first", "complete_kyc"),
    "kyc_mismatch": S(
        422,
        "实名信息核验不一致，请核对姓名、身份证号、银行卡和手机号",
        "The identity details did not verify; check them",
        "complete_kyc",
    ),
    "kyc_provider_unavailable": S(
        503,
        "实名核验服务暂时不可用，请稍后重试",
        "The identity verification service is unavailable; try again later",
        "retry_later",
    ),
    "card_name_mismatch": S(
        422,
        "收款账户户名与实名认证姓名不一致",
        "The payout account holder name does not match the verified name",
        "change_payout_account",
    ),
    "payout_account_invalid": S(
        422, "收款账户不可用", "The payout account cannot receive money", "change_payout_account"
    ),
    "invalid_card_number": S(
        400, "银行卡号无效（校验位错误）", "The card number is not valid (check digit)", "check_payout_account"
    ),
    "invalid_id_number": S(400, "身份证号码无效", "The resident ID number is not valid", "complete_kyc"),
    "merchant_frozen": S(422, "商户账户已冻结，暂不能提现", "The merchant account is frozen", "contact_support"),
    # withdrawal lifecycle
    "invalid_state": S(409, "当前状态不允许此操作", "The withdrawal is not in a state that allows this", "refresh"),
    "risk_blocked": S(422, "该笔提现未通过风控审核", "The withdrawal was declined by risk control", "contact_support"),
    "rejected_by_review": S(
        422, "审核未通过", "Rejected by review", "contact_support", shows_detail=True
    ),  # failure_code of a reviewer's rejection; failure_detail holds the reviewer's reason
    "same_approver": S(
        409, "大额提现需要另一位审核员复核", "A different reviewer must give the second approval", "ask_colleague"
    ),
    "four_eyes_required": S(
        409,
        "该变更需要另一位人员复核，提出人不能批准自己的变更",
        "A different person must approve this change",
        "ask_colleague",
    ),
    # AML reports (compliance): draft → reviewed → filed or dismissed
    "report_invalid_state": S(
        409, "报告当前状态不允许此操作", "The report is not in a state that allows this", "refresh"
    ),
    "report_dismiss_reason_required": S(
        400, "排除报告必须填写理由", "Dismissing a report needs a reason", "fix_request"
    ),
    "report_same_reviewer": S(
        409,
        "排除报告须由复核人以外的另一位合规人员操作",
        "A compliance officer other than the reviewer must dismiss the report",
        "ask_colleague",
    ),
    "verification_failed": S(422, "验证码错误或已过期", "The verification code is wrong or expired", "retry"),
    "verification_locked": S(
        422, "验证失败次数过多，请联系客服", "Too many failed verification attempts; contact support", "contact_support"
    ),
    "verification_exhausted": S(
        422,
        "验证失败次数过多，这笔提现已转人工审核",
        "Too many failed verification attempts; the withdrawal went to manual review",
        "wait",
    ),
    "stepup_resend_too_soon": S(
        429,
        "验证码发送过于频繁，请稍后再试",
        "A code was sent moments ago; wait before asking for another",
        "retry_later",
    ),
    "stepup_send_limit": S(
        429,
        "今日验证码发送次数已达上限，请明天再试或联系客服",
        "The daily limit of verification codes is reached; try tomorrow or contact support",
        "retry_later",
    ),
    "face_check_unavailable": S(
        422,
        "人脸核验暂不可用，请使用短信或动态口令验证",
        "Face check is not available; use the SMS code or authenticator",
        "verify_identity",
    ),
    "reauthentication_failed": S(
        403,
        "密码或当前验证码不正确，请重新输入",
        "The password or the current verification code is wrong",
        "retry",
    ),
    "login_locked": S(
        429,
        "登录失败次数过多，已临时锁定，请稍后再试或联系客服解锁",
        "Too many failed sign-in attempts; locked for a while — try later or ask support to unlock",
        "retry_later",
    ),
    "no_channel_available": S(
        503, "暂无可用的出款通道，系统将自动重试", "No payout channel is available now; we will retry", "wait"
    ),
    "channel_maintenance": S(503, "出款通道维护中，系统将自动重试", "The payout channel is under maintenance", "wait"),
    # payout failure reasons (shown to merchants in plain words)
    "payout_failed": S(
        422,
        "提现未成功，资金已退回可提现余额",
        "The withdrawal did not go through; the money is back in the available balance",
        "retry",
    ),  # a failure_code this catalogue does not know (an old row): the generic words
    "invalid_account": S(
        422,
        "收款账户不存在或卡号有误，请核对后重试",
        "The payee account does not exist",
        "change_payout_account",
    ),
    "account_frozen": S(
        422,
        "收款账户已被冻结或挂失，请更换收款账户",
        "The payee account is frozen; use another account",
        "change_payout_account",
    ),
    "name_mismatch": S(
        422,
        "收款账户户名与开户名不符，请核对户名",
        "The holder name does not match the bank's records",
        "change_payout_account",
    ),
    "bank_returned": S(422, "银行退票，款项已退回余额", "The bank returned the payment; money is back", "retry"),
    "payee_unclaimed": S(422, "收款人未在 24 小时内确认收款", "The payee did not confirm within 24 hours", "retry"),
    "channel_timeout": S(503, "通道响应超时，正在确认结果", "The channel timed out; confirming the result", "wait"),
    "channel_error": S(503, "通道暂时异常，系统将自动重试", "The channel had a temporary problem", "wait"),
    # reason codes the channel adapters emit (channels.catalogue.reason_codes()); merchants see these words
    "payee_not_verified": S(
        422,
        "收款账户未完成实名认证，请更换已实名的收款账户",
        "The payee account is not real-name verified",
        "change_payout_account",
    ),
    "payee_receive_limit_reached": S(
        422,
        "收款账户已达到今日收款限额，请明日再试或更换收款账户",
        "The payee account reached its receiving limit",
        "retry_later",
    ),
    "channel_risk_rejected": S(
        422,
        "该笔出款未通过支付通道的风险审核，请更换收款账户或联系客服",
        "The payment channel declined this payout",
        "change_payout_account",
    ),
    "channel_request_invalid": S(
        422,
        "出款请求信息有误，请核对收款账户信息后重试",
        "The payout request was invalid; check the payee account",
        "check_payout_account",
    ),
    "account_kind_unsupported": S(
        422,
        "当前通道不支持该类型的收款账户，系统将尝试其他通道",
        "The channel does not support this account type",
        "wait",
    ),
    "amount_below_channel_minimum": S(
        422, "金额低于通道单笔最低限额，系统将尝试其他通道", "The amount is below the channel's minimum", "wait"
    ),
    "amount_over_channel_limit": S(
        422, "金额超过通道单笔限额，系统将尝试其他通道", "The amount is above the channel's per-payout limit", "wait"
    ),
    "channel_daily_limit_reached": S(
        503, "通道今日额度已用完，系统将尝试其他通道", "The channel's daily limit is reached", "wait"
    ),
    "channel_account_restricted": S(
        503, "出款通道账户受限，系统将切换通道并自动重试", "Our account at the channel is restricted", "wait"
    ),
    "channel_funds_insufficient": S(
        503, "出款通道备付金不足，系统将切换通道并自动重试", "Our funding account at the channel is short", "wait"
    ),
    "channel_misconfigured": S(
        503, "出款通道配置异常，系统将切换通道并自动重试", "The channel is misconfigured", "wait"
    ),
    "channel_response_invalid": S(
        503,
        "通道返回异常，正在确认结果",
        "The channel's answer could not be verified; confirming the result",
        "wait",
    ),
    "channel_system_error": S(503, "通道系统繁忙，正在确认结果", "The channel had a system error", "wait"),
    "channel_unclassified_error": S(
        503, "通道返回未知错误，正在确认结果", "The channel returned an unknown error; confirming the result", "wait"
    ),
    "order_conflict": S(
        409, "通道订单信息冲突，正在确认结果", "The channel holds a different order under this number", "wait"
    ),
    "order_no_unsupported": S(
        503, "订单号格式不被该通道支持，系统将尝试其他通道", "The channel does not accept this order number", "wait"
    ),
}


def code_message(code: str, *, language: str | None = None) -> str:
    """The code's words in the language; a code the catalogue does not know is shown as itself."""
    spec = CODES.get(code)
    if spec is None:
        return code
    return spec.en if is_english(language) else spec.zh


def code_action(code: str) -> str:
    spec = CODES.get(code)
    return spec.action if spec is not None else "contact_support"


def error_body(
    code: str, *, message: str | None = None, details: Any = None, language: str | None = None
) -> dict[str, Any]:
    """The API's error object: ``{"error": {"code", "message", "action": {"code", "text"}, "details"}}``."""
    return {
        "error": {
            "code": code,
            "message": message or code_message(code, language=language),
            "action": action_dict(code_action(code), language=language),
            "details": details if details is not None else {},
        }
    }


# --- failure reasons --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why a withdrawal failed, as a merchant reads it."""

    code: str
    message: str
    action: str
    action_text: str

    @property
    def suggests_another_account(self) -> bool:
        return self.action == "change_payout_account"


def failure_describe(code: str, detail: str = "", *, language: str | None = None) -> Failure | None:
    """The words and the suggested action for a withdrawal's ``failure_code`` (None when it has none).

    The failure is final, so a code whose in-flight action is "wait" (the platform was still handling it)
    suggests a retry instead. A code the catalogue does not know shows its detail, else the generic words."""
    if not code:
        return None
    english = is_english(language)
    spec = CODES.get(code)
    if spec is None:
        generic = CODES["payout_failed"]
        message = detail or (generic.en if english else generic.zh)
        action = generic.action
    else:
        message = spec.en if english else spec.zh
        if spec.shows_detail and detail:
            message = f"{message}: {detail}" if english else f"{message}：{detail}"
        action = "retry" if spec.action == "wait" else spec.action
    return Failure(code, message, action, action_text(action, language=language))


def failure_text(code: str, detail: str = "", *, language: str | None = None) -> str:
    failure = failure_describe(code, detail, language=language)
    return failure.message if failure is not None else ""


# --- notifications ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationTemplate:
    kind: str  # Notification.kind: what the inbox groups by
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    action: str
    money: tuple[str, ...] = ()  # placeholders given as integer fen, shown in yuan


N = NotificationTemplate

NOTIFICATIONS: dict[str, NotificationTemplate] = {
    "webhook_endpoint_disabled": N(
        "webhook_endpoint_disabled",
        "Webhook 接收地址已停用",
        "Webhook endpoint disabled",
        "{url} 连续 {failures} 次接收失败（超过一天），已停用。修复后请在 Webhook 页面启用并重新发送。",
        "{url} failed {failures} times in a row over more than a day and was disabled. Fix it, then enable it "
        "and replay on the Webhooks page.",
        "check_webhook_endpoint",
    ),
    "withdrawal_paid": N(
        "withdrawal_paid",
        "提现已到账",
        "Withdrawal paid",
        "{net_amount} 元已打入您的收款账户。",
        "{net_amount} yuan has been paid into your payout account.",
        "none",
        money=("net_amount",),
    ),
    "withdrawal_failed": N(
        "withdrawal_failed",
        "提现失败，资金已退回",
        "Withdrawal failed; the money is back",
        "{reason}。您可以修改收款账户后一键重试。",
        "{reason}. You can change the payout account and retry in one click.",
        "retry",
    ),
    "withdrawal_returned": N(
        "withdrawal_returned",
        "银行退票，资金已退回",
        "Returned by the bank; the money is back",
        "收款银行退回了这笔款项，金额已全额退回可提现余额。",
        "The payee's bank returned the payment; the whole amount is back in your available balance.",
        "retry",
    ),
    "withdrawal_rejected_by_risk": N(
        "withdrawal_rejected",
        "提现未通过风控审核",
        "Withdrawal declined by risk control",
        "资金已退回可提现余额。如有疑问请提交工单。",
        "The money is back in your available balance. Open a support ticket if you have questions.",
        "contact_support",
    ),
    "withdrawal_rejected_by_review": N(
        "withdrawal_rejected",
        "提现申请被驳回",
        "Withdrawal rejected",
        "原因：{reason}。资金已全额退回可提现余额。",
        "Reason: {reason}. The whole amount is back in your available balance.",
        "contact_support",
    ),
    "withdrawal_verify_totp": N(
        "withdrawal_verify",
        "请完成身份验证",
        "Verify it is you",
        "请输入身份验证器 App 中的 6 位动态口令，验证后即出款。",
        "Enter the 6-digit code from your authenticator app; the payout starts once verified.",
        "verify_identity",
    ),
    "withdrawal_verify_sms": N(
        "withdrawal_verify",
        "请完成短信验证",
        "Verify by SMS",
        "验证码已发送到您的手机，验证后即出款。",
        "A code was sent to your phone; the payout starts once verified.",
        "verify_identity",
    ),
    "withdrawal_review": N(
        "withdrawal_review",
        "提现已转人工审核",
        "Withdrawal sent to manual review",
        "验证失败次数过多，这笔提现将由审核员处理，请留意消息。",
        "Too many failed verification attempts; a reviewer will handle this withdrawal. Watch your messages.",
        "wait",
    ),
}


def notification_placeholders(name: str) -> set[str]:
    """The parameters a template needs (the same in both languages; a test checks it)."""
    t = NOTIFICATIONS[name]
    fields: set[str] = set()
    for text in (t.title_zh, t.title_en, t.body_zh, t.body_en):
        fields |= {f for _, f, _, _ in string.Formatter().parse(text) if f}
    return fields


@dataclass(frozen=True)
class RenderedNotification:
    kind: str
    title: str
    body: str
    action: str


def notification_render(name: str, *, language: str | None = None, **params: Any) -> RenderedNotification:
    """A notification's text from its template. Money placeholders take integer fen; ``failure_code`` (with
    ``failure_detail``) fills ``{reason}`` with the failure's words in the same language."""
    t = NOTIFICATIONS[name]
    english = is_english(language)
    values = dict(params)
    for field in t.money:
        values[field] = fen_to_yuan(values[field])
    if "failure_code" in values:
        values["reason"] = failure_text(
            values.pop("failure_code"), values.pop("failure_detail", ""), language="en" if english else PAGE_LANGUAGE
        )
    title, body = (t.title_en, t.body_en) if english else (t.title_zh, t.body_zh)
    return RenderedNotification(t.kind, title.format(**values), body.format(**values), t.action)
