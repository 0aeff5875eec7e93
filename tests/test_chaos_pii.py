"""The chaos run's check that no full personal number reaches the platform's process logs: it finds a planted
phone, ID or card number in a worker's or the web server's log, and leaves the gateway's (the bank's) alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.factories import MerchantFactory

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def chaos():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location("chaos_under_test", ROOT / "scripts" / "chaos.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_full_numbers_in_platform_logs_are_found_and_the_gateways_are_not(chaos, tmp_path):
    merchant = MerchantFactory(id_number="110101199003074477", phone="13900131234")
    card = merchant.payout_accounts.get(is_default=True).account_number
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "web.log").write_text('"GET /withdrawals/ HTTP/1.1" 200\nmasked 139****1234 and 110***********4477\n')
    (logs / "worker1.log").write_text(f"ok\npayout to {card} accepted\n")
    (logs / "beat.log").write_text("Scheduler: Sending due task sweep for 110101199003074477\n")
    (logs / "gateway.log").write_text(f"bank paid {card} for 13900131234\n")
    people = [SimpleNamespace(pk=merchant.pk, phone="13900131234")]
    found = chaos.pii_in_logs(SimpleNamespace(run_dir=tmp_path), people)
    assert [line.split(":")[0] for line in found] == [
        "full bank_card number in worker1.log line 2",
        "full ID number in beat.log line 1",
    ]
    (logs / "worker1.log").write_text("ok\n")
    (logs / "beat.log").write_text("ok\n")
    assert chaos.pii_in_logs(SimpleNamespace(run_dir=tmp_path), people) == []
