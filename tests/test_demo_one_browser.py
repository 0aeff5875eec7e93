"""The demo a newcomer uses from one browser (issue 15): after `seed_demo`, alice, bob and carol log in one after
the other from the same browser (one device cookie, 127.0.0.1) and each withdrawal is decided by the real risk
engine and paid; the review queue already holds a prepared case. Outside demo mode the device and the address
risk sees are exactly what the browser sent."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory

from accounts.models import User
from channels.models import Channel
from operations.demo import PASSWORD
from withdrawals.models import Status, Withdrawal
from withdrawals.views.common import client_ip, device_id

pytestmark = pytest.mark.django_db(transaction=True)
BROWSER = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "Mozilla/5.0 Chrome/156", "HTTP_ACCEPT_LANGUAGE": "zh-CN"}
DEVICE = "fp-one-shared-browser-01"


def withdraw(username: str) -> Withdrawal:
    client = Client(
        REMOTE_ADDR=BROWSER["REMOTE_ADDR"],
        HTTP_USER_AGENT=BROWSER["HTTP_USER_AGENT"],
        HTTP_ACCEPT_LANGUAGE=BROWSER["HTTP_ACCEPT_LANGUAGE"],
    )
    client.cookies["dfp"] = DEVICE
    assert client.post("/login/", {"username": username, "password": PASSWORD, "device": DEVICE}).status_code == 302
    page = client.get("/withdraw/").content.decode()
    account = re.search(r'name="payout_account" value="(\d+)"\s+checked', page)
    assert account, username
    step1 = client.post("/withdraw/", {"amount": "100.00", "payout_account": account.group(1), "speed": "standard"})
    confirm = client.get(step1["Location"]).content.decode()
    data = {
        "d": parse_qs(urlparse(step1["Location"]).query)["d"][0],
        "idempotency_key": re.search(r'name="idempotency_key" value="([^"]*)"', confirm).group(1),  # type: ignore[union-attr]
        "expected_fee": re.search(r'name="expected_fee" value="([^"]*)"', confirm).group(1),  # type: ignore[union-attr]
        "device": DEVICE,
    }
    assert client.post("/withdraw/confirm/", data).status_code == 302
    return Withdrawal.objects.filter(merchant__users__username=username, amount=10_000).get()


def test_three_demo_merchants_withdraw_from_one_browser_and_are_paid(settings, sandbox_channel) -> None:
    settings.DEMO_MODE = True
    call_command("seed_demo", verbosity=0)
    [case] = Withdrawal.objects.filter(status=Status.PENDING_REVIEW)
    assert (case.amount, case.required_approvals, case.merchant.name) == (6_000_000, 2, "Carol 电商卡券")
    call_command("seed_demo", verbosity=0)  # a second start prepares nothing twice
    assert Withdrawal.objects.count() == 1
    # No sandbox gateway process in this test: the in-process sandbox channel pays (the gateway's own tests
    # cover the protocols).
    Channel.objects.exclude(code="sandbox").update(enabled=False)
    outcomes = {name: withdraw(name) for name in ("alice", "bob", "carol")}
    outcomes = {name: Withdrawal.objects.get(pk=w.pk) for name, w in outcomes.items()}
    for name, w in outcomes.items():
        assert (w.risk_outcome, w.status) == ("allow", Status.PAID), (name, w.risk_reasons)
    devices = {w.device_id for w in outcomes.values()}
    ips = {w.client_ip for w in outcomes.values()}
    assert len(devices) == 3 and all(d.startswith(f"{DEVICE}-demo-") for d in devices)
    assert len(ips) == 3 and all(str(ip).startswith("100.") for ip in ips)  # carriers' shared space, never public


def test_outside_demo_mode_risk_sees_exactly_what_the_browser_sent(settings, merchant_alice) -> None:
    settings.DEMO_MODE = False
    request = RequestFactory().post("/withdraw/confirm/", {"device": DEVICE}, REMOTE_ADDR="127.0.0.1")
    request.user = User.objects.get(username="alice")
    assert (device_id(request), client_ip(request)) == (DEVICE, "127.0.0.1")
    settings.DEMO_MODE = True
    assert device_id(request) == f"{DEVICE}-demo-alice" and client_ip(request).startswith("100.")
