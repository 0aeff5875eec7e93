from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[1]


def test_merchant_create_prints_a_key_that_can_withdraw(sandbox_channel):
    out = io.StringIO()
    call_command("merchant_create", "--name", "CLI 商户", "--credit", "200000", "--json", stdout=out)
    created = json.loads(out.getvalue())
    assert set(created) == {"merchant_id", "api_key", "payout_account_id"}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {created['api_key']}")
    assert client.get("/api/v1/wallet").json()["available"] == 200_000
    r = client.post(
        "/api/v1/withdrawals",
        data={"amount": 50_000, "payout_account": created["payout_account_id"]},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="cli-1",
    )
    assert r.status_code == 201
    assert client.get(f"/api/v1/withdrawals/{r.json()['id']}").json()["status"] == "paid"
    call_command("ledger_check")


def test_seed_demo_is_idempotent_and_prints_working_keys(sandbox_channel, settings):
    settings.DEMO_MODE = True  # demo users and fixed keys exist only in demo mode (test_security_settings)
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    key = next(line.split("API key ")[1].strip() for line in out.getvalue().splitlines() if "alice" in line)
    assert Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/v1/wallet").status_code == 200
    from accounts.models import Merchant, User

    assert Merchant.objects.count() == 3
    assert User.objects.filter(username__in=["reviewer", "reviewer2", "admin"]).count() == 3
    call_command("ledger_check")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
        (
            {"WITHDRAWAL_STUCK_AFTER_SECONDS": "soon"},
            "WITHDRAWAL_STUCK_AFTER_SECONDS='soon' is not an integer",
        ),
        ({"CELERY_BROKER_URL": "amqp://x"}, "CELERY_BROKER_URL='amqp://x'"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "is not supported"),
    ],
)
def test_bad_settings_fail_with_a_precise_message(env, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr
