"""Merchant pages say what happened (issue 15): the banner after submitting matches the outcome (never a green
"申请成功" above a refusal), a withdrawal that ended without payment shows no arrival amount, and the stepper's
finished steps say how they ended."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from risk.contract import Outcome, RiskDecision
from tests.test_pages import _confirm_form, _html, _submit
from withdrawals.models import Status, Withdrawal

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(merchant_alice: Any) -> Client:
    client = Client()
    assert client.login(username="alice", password="pass-1234")
    return client


def _risk(monkeypatch: pytest.MonkeyPatch, outcome: Outcome, reasons: list[str]) -> None:
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda **kw: RiskDecision(outcome=outcome, score=99.0, reasons=reasons),
    )


def _messages(html: str) -> list[tuple[str, str]]:
    """The banners above the page: (level, text)."""
    block = re.search(r'<ul class="messages">(.*?)</ul>', html, re.S)
    return re.findall(r'<li class="([^"]*)" role="status">([^<]*)</li>', block.group(1)) if block else []


def _steps(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-step-state="([a-z]+)">([^<]+)<', html)


def test_a_blocked_withdrawal_gets_an_error_banner_and_no_arrival_amount(
    alice_client: Client, merchant_alice: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _risk(monkeypatch, "block", ["blocklisted_device"])
    _, data = _confirm_form(alice_client, merchant_alice, "300.00")
    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    w = Withdrawal.objects.get()
    assert w.status == Status.REJECTED
    html = _html(alice_client.get(response["Location"]))
    [(level, text)] = _messages(html)
    assert level == "error" and text.startswith("提现未通过审核") and "资金已全额退回可提现余额" in text
    assert "未出款（¥300.00 已退回可提现余额）" in html
    assert f"¥{w.net_amount / 100:.2f}" not in html.split("提现信息", 1)[1].split("</dl>", 1)[0]
    assert _steps(html)[0] == ("error", "未通过审核")


def test_a_withdrawal_held_for_review_says_so(
    alice_client: Client, merchant_alice: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _risk(monkeypatch, "review", ["amount_spike"])
    _, data = _confirm_form(alice_client, merchant_alice, "300.00")
    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    assert Withdrawal.objects.get().status == Status.PENDING_REVIEW
    html = _html(alice_client.get(response["Location"]))
    assert _messages(html) == [("info", "申请已提交，正在人工审核，审核通过后自动出款")]
    assert _steps(html) == [("current", "审核中"), ("todo", "支付中"), ("todo", "已到账")]


def test_a_paid_withdrawal_shows_each_finished_step_by_how_it_ended(
    alice_client: Client, merchant_alice: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _risk(monkeypatch, "allow", [])
    _, data = _confirm_form(alice_client, merchant_alice, "300.00")
    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    assert Withdrawal.objects.get().status == Status.PAID
    html = _html(alice_client.get(response["Location"]))
    assert _messages(html) == [("success", "申请成功")]
    assert _steps(html) == [("done", "审核通过"), ("done", "已出款"), ("done", "已到账")]
    assert "未出款" not in html


def test_a_wrong_step_up_code_says_how_many_tries_remain(
    alice_client: Client, merchant_alice: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _risk(monkeypatch, "step_up", ["new_device"])
    _, data = _confirm_form(alice_client, merchant_alice, "300.00")
    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    w = Withdrawal.objects.get()
    assert w.status == Status.AWAITING_VERIFICATION
    assert _messages(_html(alice_client.get(response["Location"]))) == [
        ("warning", "申请已提交：请在下方完成二次验证，验证通过后即出款")
    ]
    wrong = alice_client.post(f"/withdrawals/{w.pk}/verify/", {"code": "000000"}, follow=True)
    assert _messages(_html(wrong)) == [("error", "验证码错误或已过期，还可尝试 4 次")]  # STEPUP_MAX_FAILURES = 5
    again = alice_client.post(f"/withdrawals/{w.pk}/verify/", {"code": "000001"}, follow=True)
    assert _messages(_html(again)) == [("error", "验证码错误或已过期，还可尝试 3 次")]
