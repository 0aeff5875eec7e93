"""Security issue, checked against real running processes: a full `make run` (runserver, worker, beat, gateway,
SMS receiver; merchants through pages and the partner API, every staff role through the admin) and `make serve`
(gunicorn, DJANGO_DEBUG=0) behind an emulated TLS proxy. The log masking let full numbers through when they were
URL-encoded or typed with separators: an access log line of runserver and of gunicorn for the login redirect after
a staff search (``GET /admin/login/?next=/admin/accounts/kycrecord/%3Fq%3D13800130001``) or a search typed with
spaces (``?q=6217+0062+0966+5428+707``) carried the whole phone / card / ID number.
"""

from __future__ import annotations

import logging
import re

import pytest

from config.pii import mask_text

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
    ],
)
def test_log_masking_sees_numbers_url_encoded_or_with_separators(line: str, number: str) -> None:
    masked = mask_text(line)
    digits = re.sub(r"%20|[^0-9Xx]", "", masked)
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
