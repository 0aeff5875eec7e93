"""HTML for people: a decision's explanation and a merchant's linked accounts (used by the review console)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import RiskLabel
from .selectors import risk_linked_accounts

KIND_LABEL = {"device": "设备", "ip": "IP", "card": "银行卡", "phone": "手机号", "id_number": "身份证号"}
# Cards, phones and identity numbers are known to risk by keyed hash only (risk.services.risk_link_key): shown
# as a short reference that tells equal values apart, never as the number.
HASHED_KINDS = {"card", "phone", "id_number"}


def link_value(kind: str, value: str) -> str:
    return f"#{str(value)[:8]}" if kind in HASHED_KINDS else str(value)


def explanation_html(explanation: dict[str, Any]) -> SafeString | str:
    """Rules hit with points, key features, model contribution, rule-set version, shadow result, list hits."""
    if not explanation:
        return "—"
    rules = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td style='text-align:right'>{}</td><td>{}</td></tr>",
        ((r["code"], f"+{r['score']:g}", r.get("outcome", "")) for r in explanation.get("rules", [])),
    )
    features = format_html_join(
        ", ",
        "<code>{}</code>={}",
        ((k, f"{v:g}" if isinstance(v, float) else v) for k, v in explanation.get("features", {}).items()),
    )
    model = explanation.get("model") or {}
    contributions = format_html_join(
        ", ", "<code>{}</code> {}", ((k, f"{v:+.2f}") for k, v in (model.get("top_contributions") or {}).items())
    )
    shadow = explanation.get("shadow")
    hits = format_html_join(
        "<br>",
        "{} {} ({}: {})",
        (
            (KIND_LABEL.get(h["kind"], h["kind"]), link_value(h["kind"], h["value"]), h["source"], h.get("reason", ""))
            for h in explanation.get("list_hits", [])
        ),
    )
    thresholds = explanation.get("thresholds") or {}
    origin = explanation.get("outcome_from")
    return format_html(
        "<p><b>规则集</b> {} · 阈值 step_up {} / review {} / block {}</p>{}"
        "<table><thead><tr><th>命中规则</th><th>分值</th><th>强制结果</th></tr></thead><tbody>{}</tbody></table>"
        "<p><b>模型</b> {} 分数 {}，规则加分 {}；主要贡献（对数几率）：{}</p>"
        "<p><b>关键特征</b> {}</p>{}{}",
        explanation.get("ruleset_version", "?"),
        thresholds.get("step_up", "—"),
        thresholds.get("review", "—"),
        thresholds.get("block", "仅阻断规则"),  # decisions before risk-rules-3 had a block score band
        format_html(
            "<p><b>判定依据</b> 分数档 {}；{}</p>",
            origin.get("score_band", "—"),
            format_html_join(
                "；", "强制 {} ← {}", ((outcome, ", ".join(codes)) for outcome, codes in origin["forced"].items())
            )
            or "无规则强制结果",
        )
        if origin
        else "",
        rules or format_html("<tr><td colspan=3>无</td></tr>"),
        model.get("version", "—"),
        model.get("score", "—"),
        model.get("points", 0),
        contributions or "—",
        features or "—",
        format_html(
            "<p><b>影子规则集</b> {} → {}（{} 分；{}）</p>",
            shadow["version"],
            shadow["outcome"],
            shadow["score"],
            ", ".join(shadow.get("rules", [])) or "无命中",
        )
        if shadow
        else "",
        format_html("<p><b>高风险名单命中</b><br>{}</p>", hits) if explanation.get("list_hits") else "",
    )


def linked_accounts_html(merchant_subject: str, link_for: Callable[[str], tuple[str, str] | None]) -> SafeString | str:
    """Other merchants sharing a device, IP, card, phone or ID; ``link_for(subject)`` gives (url, label)."""
    linked = risk_linked_accounts(merchant_subject=merchant_subject)
    if not linked:
        return "无关联账户"
    rows = []
    for item in linked:
        target = link_for(item["merchant"])
        via = ", ".join(
            f"{KIND_LABEL.get(v['kind'], v['kind'])} {link_value(v['kind'], v['value'])}" for v in item["via"]
        )
        rows.append((target[0] if target else "", target[1] if target else item["merchant"], via))
    return format_html(
        "<table><thead><tr><th>商户</th><th>共用</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td></tr>",
            ((format_html('<a href="{}">{}</a>', url, label) if url else label, via) for url, label, via in rows),
        ),
    )


def labels_html(withdrawal_ref: str) -> str:
    labels = RiskLabel.objects.filter(withdrawal_ref=withdrawal_ref).order_by("created_at")
    return "; ".join(f"{lab.get_source_display()}（{'欺诈' if lab.fraud else '正常'}）" for lab in labels) or "—"
