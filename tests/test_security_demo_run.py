"""Security issue, checked against real running processes: a full `make run` (runserver, worker, beat, gateway,
SMS receiver; merchants through pages and the partner API, every staff role through the admin) and `make serve`
(gunicorn, DJANGO_DEBUG=0) behind an emulated TLS proxy. Two doors were still open there:

- the log masking let full numbers through when they were URL-encoded or typed with separators: an access log
  line of runserver and of gunicorn for the login redirect after a staff search
  (``GET /admin/login/?next=/admin/accounts/kycrecord/%3Fq%3D13800130001``) or a search typed with spaces
  (``?q=6217+0062+0966+5428+707``) carried the whole phone / card / ID number;
- a NUL byte in a form field a view reads itself (the retry button's ``idempotency_key``, the reviewer's note and
  rejection reason) reached PostgreSQL and answered 500.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

from config.pii import mask_text
from risk.contract import RiskDecision
from tests.factories import MerchantFactory, card_for, reviewer
from tests.staff import staff_client
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

PHONE, CARD, ID_NUMBER = "13800130001", "6217006165172862335", "11010519491231002X"


# --- log lines: numbers in URL-encoded query strings ---------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "number"),
    [
        # runserver / gunicorn access lines of the demo run and the production run
        ('"GET /admin/login/?next=/admin/accounts/kycrecord/%3Fq%3D13800130001 HTTP/1.1" 302 0', PHONE),
        ('"GET /admin/otp/?next=%2Fadmin%2Faccounts%2Fpayoutaccount%2F%3Fq%3D6217006165172862335 HTTP/1.1"', CARD),
        ('"GET /admin/login/?next=/admin/risk/risklistentry/%3Fq%3D11010519491231002X HTTP/1.1" 200', ID_NUMBER),
        ('127.0.0.1 "GET /admin/accounts/payoutaccount/?q=6217+0061+6517+2862+335 HTTP/1.1" 302 0 1ms', CARD),
        ('"GET /admin/accounts/payoutaccount/?q=6217%200061%206517%202862%20335 HTTP/1.1"', CARD),
        ('"GET /admin/accounts/kycrecord/?q=138+0013+0001 HTTP/1.1"', PHONE),
        ('"GET /admin/accounts/kycrecord/?q=138%200013%200001 HTTP/1.1"', PHONE),
        ("phone 138 0013 0001 and 138-0013-0001", PHONE),
        ('"GET /admin/login/?next=%2Fq%3D110105%2019491231%20002X HTTP/1.1"', ID_NUMBER),
        # the login redirect quotes the search once more: "+" becomes %2B, "%20" becomes %2520 (second demo run)
        ('"GET /admin/login/?next=/admin/accounts/kycrecord/%3Fq%3D6217%2B0061%2B6517%2B2862%2B335 HTTP/1.1"', CARD),
        ('"GET /admin/login/?next=/admin/accounts/kycrecord/%3Fq%3D138%25200013%25200001 HTTP/1.1" 200', PHONE),
        ('"GET /login/?next=/x/%253Fnext%253D%252Fy%252F%253Fq%253D13800130001 HTTP/1.1"', PHONE),
    ],
)
def test_log_masking_sees_numbers_url_encoded_or_with_separators(line: str, number: str) -> None:
    masked = mask_text(line)
    digits = re.sub(r"%(?:25)?(?:20|2B)|[^0-9Xx]", "", masked)
    assert number not in digits, masked
    if number == PHONE:
        assert "138****0001" in masked
    elif number == CARD:
        assert "6217 **** **** 2335" in masked
    else:
        assert "110***********002X" in masked


def test_log_masking_leaves_ordinary_tokens_alone() -> None:
    for text in (
        "order WD20261129A1B2C3D4E5F6 amount 5000000",
        '"GET /withdrawals/?page=2&status=paid HTTP/1.1" 200 1234 12ms',
        "next=%2Fwithdrawals%2F12%2F",
        "took 0.017002944000068965s",
    ):
        assert mask_text(text) == text


def test_an_access_log_record_is_masked_whoever_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    from config.pii import install_log_masking

    install_log_masking()
    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logging.getLogger("gunicorn.access").info(
            '%s "%s" %s', "127.0.0.1", "GET /admin/login/?next=/admin/accounts/kycrecord/%3Fq%3D13800130001", 302
        )
    assert "13800130001" not in caplog.text and "138****0001" in caplog.text


# --- NUL bytes in form fields ---------------------------------------------------------------------------------
pytestmark_db = pytest.mark.django_db(transaction=True)


def _review_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="review", score=60.0),
    )


@pytestmark_db
def test_nul_in_the_reviewers_note_or_reason_is_a_400_not_a_500(merchant_alice, monkeypatch):
    _review_only(monkeypatch)
    account = merchant_alice.payout_accounts.get(is_default=True)
    w = withdrawal_submit(
        merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=10_000, idempotency_key="nul-1"
    ).withdrawal
    client = staff_client(reviewer("bob"))
    client.raise_request_exception = False
    approve = client.post(f"/admin/withdrawals/withdrawal/{w.pk}/approve/", {"note": "ok\x00"})
    reject = client.post(f"/admin/withdrawals/withdrawal/{w.pk}/reject/", {"reason": "可疑\x00"})
    assert (approve.status_code, reject.status_code) == (400, 400)
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PENDING_REVIEW and not w.approvals.exists()
    # without the NUL byte the same buttons work
    done = client.post(f"/admin/withdrawals/withdrawal/{w.pk}/reject/", {"reason": "可疑"})
    assert done.status_code == 302
    assert Withdrawal.objects.get(pk=w.pk).status == Status.REJECTED


@pytestmark_db
def test_nul_in_the_retry_key_is_a_400_not_a_500(sandbox_channel, monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="allow", score=1.0),
    )
    m = MerchantFactory(credit=500_000, username="nina")
    submitted = withdrawal_submit(merchant_id=m.pk, payout_account_id=card_for(m, "11").pk, amount=10_000)
    failed = Withdrawal.objects.get(pk=submitted.withdrawal.pk)
    assert failed.status == Status.FAILED
    client = Client(raise_request_exception=False)
    client.force_login(m.users.first())
    form = {
        "idempotency_key": "web-retry-\x00x",
        "payout_account": m.payout_accounts.get(is_default=True).pk,
        "expected_fee": "110",
    }
    assert client.post(f"/withdrawals/{failed.pk}/retry/", form).status_code == 400
    assert not Withdrawal.objects.filter(retry_of=failed).exists()
    # without the NUL byte the same button works
    retried = client.post(f"/withdrawals/{failed.pk}/retry/", {**form, "idempotency_key": "web-retry-ok"})
    assert retried.status_code == 302
    assert Withdrawal.objects.filter(retry_of=failed).count() == 1


def test_log_masking_leaves_a_uuid_whole_but_not_a_number_beside_it() -> None:
    task = "5db5e6b0-7437-4412-9812-935412345678"  # all-digit groups joined by dashes, like a grouped card number
    line = f"Task withdrawals.payout_run[{task}] succeeded for 13800138000"
    assert mask_text(line) == f"Task withdrawals.payout_run[{task}] succeeded for 138****8000"
    assert mask_text("card 6217-0061-6517-2862-335 paid") == "card 6217 **** **** 2335 paid"
