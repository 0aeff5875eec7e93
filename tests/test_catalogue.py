"""One vocabulary: every code a user can read and every notification comes from ``config.catalogue``, in zh-Hans
and English, with an action to suggest.

The walker reads the apps' source (AST, nothing imported) for the codes the code can produce — ``failure_code``
/ ``reason_code`` literals (keywords, assignments, comparisons, defaults), ``DomainError("…")`` and the other
calls that take a code, ``{"error": {"code": "…"}}`` bodies — and for notifications (the template each
``…notify(…)`` call names, and no hand-written Chinese in such a call). The channel catalogue's reasons are
checked by import. A new code without a catalogue entry fails here; the negative cases prove the walker sees one.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client

from accounts.models import Notification
from accounts.services import api_key_create
from channels.catalogue import CATALOGUE as CHANNEL_CATALOGUE
from channels.catalogue import reason_codes
from config.catalogue import (
    ACTIONS,
    CODES,
    NOTIFICATIONS,
    failure_describe,
    notification_placeholders,
    notification_render,
)
from tests.factories import card_for
from withdrawals.models import Withdrawal

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "config",
    "workdays",
    "accounts",
    "webhooks",
    "wallets",
    "channels",
    "risk",
    "compliance",
    "withdrawals",
    "operations",
    "simulation",
    "scripts",
)
CODE_FIELDS = {"failure_code", "reason_code"}
# Calls whose first argument is a code of the catalogue.
CODE_CALLS = {
    "DomainError",
    "error_message",
    "code_message",
    "code_action",
    "error_body",
    "error_response",
    "api_error",
    "_api_error",
    "failure_describe",
    "failure_text",
}
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class Problem:
    where: str
    what: str  # "code" | "notification" | "hardcoded"
    value: str


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _strings(node: ast.expr | None) -> list[str]:
    """The string literal(s) of a constant or of a set / list / tuple of constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return [node.value]
    if isinstance(node, ast.Set | ast.List | ast.Tuple):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _written_chinese(node: ast.expr) -> list[str]:
    """Chinese written in the source: a string literal, or the literal parts of an f-string."""
    parts = node.values if isinstance(node, ast.JoinedStr) else [node]
    texts = [p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
    return [t for t in texts if CJK.search(t)]


def _is_code_field(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in CODE_FIELDS) or (
        isinstance(node, ast.Name) and node.id in CODE_FIELDS
    )


def uses(source: str, filename: str = "<snippet>") -> list[tuple[str, str, str]]:
    """``(where, what, value)`` for every code and notification template the source uses, and every
    hand-written Chinese text given to a notification call (``what`` = "hardcoded")."""
    found: list[tuple[str, str, str]] = []

    def add(node: ast.AST, what: str, values: list[str]) -> None:
        found.extend((f"{filename}:{getattr(node, 'lineno', 0)}", what, v) for v in values)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg in CODE_FIELDS:
            add(node.value, "code", _strings(node.value))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if _is_code_field(target):
                    add(node, "code", _strings(node.value))
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=False):
                        if _is_code_field(t):
                            add(node, "code", _strings(v))
        elif isinstance(node, ast.Compare) and _is_code_field(node.left):
            for comparator in node.comparators:
                add(node, "code", _strings(comparator))
        elif isinstance(node, ast.arguments):
            positional = node.posonlyargs + node.args
            pairs = list(zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None]
            for arg, default in pairs:
                if arg.arg in CODE_FIELDS:
                    add(default, "code", _strings(default))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "error" and isinstance(value, ast.Dict):
                    for k, v in zip(value.keys, value.values, strict=True):
                        if isinstance(k, ast.Constant) and k.value == "code":
                            add(v, "code", _strings(v))
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            if name in CODE_CALLS and node.args:
                add(node, "code", _strings(node.args[0]))
            if name.endswith("notify") or name == "notification_render":
                literals = [a for a in node.args if _strings(a)]
                if literals:
                    add(node, "notification", _strings(literals[0])[:1])
                others = [a for a in node.args if a is not (literals[0] if literals else None)]
                others += [k.value for k in node.keywords]
                add(node, "hardcoded", [t for a in others for t in _written_chinese(a)])
            manager = node.func.value if isinstance(node.func, ast.Attribute) else None
            if name == "create" and isinstance(manager, ast.Attribute) and _name(manager.value) == "Notification":
                for kw in node.keywords:  # Notification.objects.create(kind=..., title=..., body=...)
                    if kw.arg == "kind":
                        add(node, "kind", _strings(kw.value))
                    elif kw.arg in ("title", "body"):
                        add(node, "hardcoded", _written_chinese(kw.value))
    return found


def problems(source: str, filename: str = "<snippet>") -> list[Problem]:
    """What the source uses that the catalogue does not have (or writes by hand)."""
    kinds = {t.kind for t in NOTIFICATIONS.values()}
    out = []
    for where, what, value in uses(source, filename):
        if (
            (what == "code" and value not in CODES)
            or (what == "notification" and value not in NOTIFICATIONS)
            or (what == "kind" and value not in kinds)
            or what == "hardcoded"
        ):
            out.append(Problem(where, what, value))
    return out


def _sources() -> list[Path]:
    paths = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts or "tests" in parts:
                continue
            paths.append(path)
    return paths


# --- the code against the catalogue -----------------------------------------------------------------------


def _problems_in_the_code(*whats: str) -> tuple[list[Problem], int]:
    found: list[Problem] = []
    seen = 0
    for path in _sources():
        source, name = path.read_text(), str(path.relative_to(ROOT))
        seen += len([u for u in uses(source, name) if u[1] in whats])
        found += [p for p in problems(source, name) if p.what in whats]
    return found, seen


def test_every_code_in_the_code_is_in_the_catalogue() -> None:
    found, seen = _problems_in_the_code("code")
    assert found == []
    assert seen > 100  # the walker does see the code (DomainError alone is raised well over a hundred times)


def test_every_notification_in_the_code_comes_from_the_catalogue() -> None:
    found, _seen = _problems_in_the_code("notification", "kind", "hardcoded")
    assert found == []
    sent = {value for path in _sources() for _, what, value in uses(path.read_text()) if what == "notification"}
    assert sent == set(NOTIFICATIONS)  # and every template is sent from somewhere the walker sees


def test_every_reason_of_the_channel_catalogue_is_in_the_catalogue() -> None:
    reasons = {entry.reason for entry in CHANNEL_CATALOGUE.values()} | set(reason_codes())
    assert sorted(reasons - set(CODES)) == []


def test_the_walker_catches_a_code_or_notification_added_without_an_entry() -> None:
    snippet = (
        "def fail(w):\n"
        "    w.failure_code = 'brand_new_reason'\n"
        "    w.failure_code, w.failure_detail = 'second_new_reason', 'x'\n"
        "    if w.failure_code in {'invalid_account', 'third_new_reason'}:\n"
        "        raise DomainError('brand_new_error')\n"
        "    raise ChannelRejected('m', reason_code='adapter_new_reason')\n"
        "def g(reason_code='default_new_reason'): ...\n"
        "notify(w, 'new_template')\n"
        "lifecycle.notify(w, 'withdrawal_paid', title='新的硬编码标题')\n"
        "_notify(w, 'withdrawal_failed', '提现失败', f'{reason}。请重试')\n"
        "Notification.objects.create(merchant_id=1, kind='new_kind', title='手写')\n"
        "answer = {'error': {'code': 'new_api_code', 'message': 'x'}}\n"
    )
    assert {(p.what, p.value) for p in problems(snippet)} == {
        ("code", "brand_new_reason"),
        ("code", "second_new_reason"),
        ("code", "third_new_reason"),
        ("code", "brand_new_error"),
        ("code", "adapter_new_reason"),
        ("code", "default_new_reason"),
        ("notification", "new_template"),
        ("hardcoded", "新的硬编码标题"),
        ("hardcoded", "提现失败"),
        ("hardcoded", "。请重试"),
        ("kind", "new_kind"),
        ("hardcoded", "手写"),
        ("code", "new_api_code"),
    }
    known = (
        "w.failure_code = 'rejected_by_review'\n"
        "raise DomainError('insufficient_funds')\n"
        "notify(w, 'withdrawal_paid', net_amount=w.net_amount)\n"
        "ChannelRejected('通道说明', reason_code='invalid_account')\n"
    )
    assert problems(known) == []
    assert len(uses(known)) == 4


# --- the catalogue itself ---------------------------------------------------------------------------------


def _chinese(text: str) -> bool:
    return bool(CJK.search(text))


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_code_has_both_languages_and_an_action(code: str) -> None:
    spec = CODES[code]
    assert _chinese(spec.zh) and spec.en and not _chinese(spec.en)
    assert spec.action in ACTIONS
    assert 400 <= spec.status < 600


def test_each_action_and_notification_has_both_languages() -> None:
    for action in ACTIONS.values():
        assert _chinese(action.zh) and action.en and not _chinese(action.en)
    for name, t in NOTIFICATIONS.items():
        assert t.action in ACTIONS and t.kind, name
        assert _chinese(t.title_zh) and _chinese(t.body_zh), name
        assert not _chinese(t.title_en) and not _chinese(t.body_en), name
        zh = {f for s in (t.title_zh, t.body_zh) for f in re.findall(r"{(\w+)}", s)}
        en = {f for s in (t.title_en, t.body_en) for f in re.findall(r"{(\w+)}", s)}
        assert zh == en == notification_placeholders(name), name
        assert set(t.money) <= zh, name


def test_notifications_render_from_the_templates() -> None:
    paid = notification_render("withdrawal_paid", net_amount=123456789)
    assert (paid.kind, paid.title, paid.body) == (
        "withdrawal_paid",
        "提现已到账",
        "1,234,567.89 元已打入您的收款账户。",
    )
    assert notification_render("withdrawal_paid", language="en", net_amount=1).body.startswith("0.01 yuan")
    failed = notification_render("withdrawal_failed", failure_code="invalid_account", failure_detail="no such payee")
    assert failed.body == "收款账户不存在或卡号有误，请核对后重试。您可以修改收款账户后一键重试。"
    assert failed.action == "retry"
    rejected = notification_render("withdrawal_rejected_by_review", reason="资料不全")
    assert (rejected.kind, rejected.body) == ("withdrawal_rejected", "原因：资料不全。资金已全额退回可提现余额。")


def test_failure_words_and_actions() -> None:
    review = failure_describe("rejected_by_review", "资料不全")
    assert review is not None and (review.message, review.action) == ("审核未通过：资料不全", "contact_support")
    english = failure_describe("rejected_by_review", "incomplete", language="en")
    assert english is not None and (english.message, english.action_text) == (
        "Rejected by review: incomplete",
        "Contact support",
    )
    account = failure_describe("account_frozen")
    assert account is not None and account.suggests_another_account and account.action_text == "更换收款账户"
    # A final failure never says "wait": the platform has stopped trying, the merchant may retry.
    timeout = failure_describe("channel_timeout")
    assert timeout is not None and timeout.action == "retry"
    # An old row with a code the catalogue no longer knows: its detail, else the generic words.
    old = failure_describe("gone_code", "银行说明")
    assert old is not None and (old.message, old.action) == ("银行说明", "retry")
    unknown = failure_describe("gone_code")
    assert unknown is not None and unknown.message == "提现未成功，资金已退回可提现余额"
    assert failure_describe("") is None


# --- what the partner API shows ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_api_shows_a_failure_in_words_with_the_action(merchant_alice) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}")
    bad = card_for(merchant_alice, "11")
    body = json.dumps({"amount": 10_000, "payout_account": bad.pk})
    created = api.post(
        "/api/v1/withdrawals",
        data=body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="v-1",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    url = f"/api/v1/withdrawals/{created.json()['id']}"
    detail = api.get(url).json()
    assert (detail["failure_code"], detail["failure_reason"], detail["failure_action"]) == (
        "invalid_account",
        "收款账户不存在或卡号有误，请核对后重试",
        {"code": "change_payout_account", "text": "更换收款账户"},
    )
    # The inbox is read on the (zh-Hans) pages: its text is zh-Hans whatever the API request asked for.
    inbox = Notification.objects.get(merchant=merchant_alice, kind="withdrawal_failed")
    assert (inbox.title, inbox.body) == (
        "提现失败，资金已退回",
        "收款账户不存在或卡号有误，请核对后重试。您可以修改收款账户后一键重试。",
    )
    english = api.get(url, HTTP_ACCEPT_LANGUAGE="en").json()
    assert (english["failure_reason"], english["failure_action"]) == (
        "The payee account does not exist",
        {"code": "change_payout_account", "text": "Use another payout account"},
    )
    # A reviewer's rejection reads as words with the reviewer's reason, not as the raw code.
    Withdrawal.objects.filter(pk=detail["id"]).update(failure_code="rejected_by_review", failure_detail="资料不全")
    rejected = api.get(url).json()
    assert (rejected["failure_code"], rejected["failure_reason"], rejected["failure_action"]["code"]) == (
        "rejected_by_review",
        "审核未通过：资料不全",
        "contact_support",
    )
    Withdrawal.objects.filter(pk=detail["id"]).update(failure_code="", failure_detail="")
    assert (api.get(url).json()["failure_reason"], api.get(url).json()["failure_action"]) == ("", None)


@pytest.mark.django_db(transaction=True)
def test_api_errors_carry_the_action_in_the_requested_language(merchant_alice) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}")
    account = merchant_alice.payout_accounts.get(is_default=True)
    body = json.dumps({"amount": 10**9, "payout_account": account.pk})
    zh = api.post("/api/v1/withdrawals", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="e-1")
    assert zh.json()["error"] == {
        "code": "limit_exceeded",
        "message": "超出提现限额",
        "action": {"code": "change_amount", "text": "调整提现金额"},
        "details": zh.json()["error"]["details"],
    }
    en = api.post(
        "/api/v1/withdrawals",
        data=body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="e-2",
        HTTP_ACCEPT_LANGUAGE="en",
    ).json()["error"]
    assert (en["message"], en["action"]) == (
        "A withdrawal limit would be exceeded",
        {"code": "change_amount", "text": "Change the amount"},
    )
    unauthenticated = Client().get("/api/v1/wallet").json()["error"]
    assert unauthenticated["action"] == {"code": "check_credentials", "text": "核对 API 密钥"}
    schema = Client().get("/api/v1/schema?format=json").json()["components"]["schemas"]
    assert schema["Withdrawal"]["properties"]["failure_action"]["allOf"] == [{"$ref": "#/components/schemas/Action"}]
    assert schema["ErrorDetail"]["properties"]["action"] == {"$ref": "#/components/schemas/Action"}
    assert set(schema["Action"]["required"]) == {"code", "text"}
