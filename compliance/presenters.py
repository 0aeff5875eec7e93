"""A report's grounds as sentences a compliance officer (and an examiner) reads, never raw JSON."""

from __future__ import annotations

from typing import Any

from config.money import yuan_label

# Grounds written as plain codes by the orchestrator (risk outcome, review, risk rule codes).
_CODES = {
    "risk_blocked": "风控拦截了这笔提现",
}
_PATTERNS = {"days": "同一商户在多个不同日期", "linked": "多个关联商户（共用设备、IP、银行卡、手机号或身份）"}


def _transactions(items: list[Any]) -> str:
    parts = []
    for t in items:
        if isinstance(t, dict):
            who = f"{t.get('merchant_name', '')} " if t.get("merchant_name") else ""
            amount, at = yuan_label(int(t.get("amount", 0))), str(t.get("at", ""))[:16].replace("T", " ")
            parts.append(f"{t.get('ref', '')}（{who}{amount}，{at}）")
    return "；".join(parts)


def ground_sentence(ground: Any) -> str:
    """One ground as a sentence."""
    if isinstance(ground, dict):
        rule = ground.get("rule")
        if rule == "large_value":
            return (
                f"单笔金额 {yuan_label(int(ground['amount']))} 达到大额交易报告标准 "
                f"{yuan_label(int(ground['threshold']))}（含本数）。"
            )
        if rule == "daily_aggregate":
            items = ground.get("transactions") or []
            return (
                f"{ground['day']} 当日该商户 {len(items)} 笔提现累计 {yuan_label(int(ground['total']))}，"
                f"达到当日累计大额标准 {yuan_label(int(ground['threshold']))}：{_transactions(items)}。"
            )
        if rule == "structuring":
            items = ground.get("transactions") or []
            how = "、".join(_PATTERNS.get(p, p) for p in ground.get("patterns") or [])
            merchants = "、".join(str(m.get("name", m.get("id"))) for m in ground.get("merchants") or [])
            days = "、".join(ground.get("days") or [])
            return (
                f"疑似拆分交易以规避大额报告：{ground.get('window_days')} 天内{how}提现略低于大额标准"
                f"（{yuan_label(int(ground['band_low']))} 至 {yuan_label(int(ground['threshold']))} 以下），"
                f"共 {len(items)} 笔、合计 {yuan_label(int(ground['total']))}；商户：{merchants}；日期：{days}。"
                f"证据：{_transactions(items)}。"
            )
        return "；".join(f"{k}: {v}" for k, v in ground.items())
    text = str(ground)
    if text in _CODES:
        return _CODES[text] + "。"
    if text.startswith("rejected_by_review:"):
        return f"审核员拒绝了这笔提现，理由：{text.split(':', 1)[1].strip() or '（未填写）'}。"
    return f"风控规则命中：{text}。"


def grounds_sentences(grounds: Any) -> list[str]:
    """Every ground of a report as a sentence, in order."""
    return [ground_sentence(g) for g in (grounds if isinstance(grounds, list) else [grounds])]
