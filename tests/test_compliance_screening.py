"""Sanctions / PEP screening (issue 13): a list imported from CSV (versions kept), names matched as written and
by pinyin, every hit recorded with its score and list version, and a hit on a payee sends the withdrawal to
review before any payout."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import ScreeningHit, ScreeningList
from compliance.screening import match_key, name_match, screen_name, screening_list_import
from config.errors import DomainError
from risk.contract import RiskDecision
from tests.factories import MerchantFactory
from tests.staff import staff_client, staff_user
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

LIST_V1 = (
    "name,kind,aliases,country,reference\n张三丰,sanction,Zhang Sanfeng;张君宝,CN,UN-001\nJohn Smith,pep,,GB,PEP-7\n"
)
LIST_V2 = "name,kind\n李四光,sanction\n"


def score(a: str, b: str) -> float:
    return name_match(match_key(a), match_key(b)).score


def test_chinese_names_match_as_written_and_by_pinyin():
    assert score("张三丰", "张三丰") == 100
    assert score("张三峰", "张三丰") == 100  # a homophone: the same pinyin
    assert name_match(match_key("张三峰"), match_key("张三丰")).matched_on == "pinyin"
    assert score("Zhang San-feng", "张三丰") == 100
    assert score("SANFENG ZHANG", "张三丰") == 100  # Western order, one word for the given name
    assert score("Zhang Sanfeng", "张三丰") == 100
    assert score("张 三 丰", "张三丰") == 100  # spaces ignored
    assert score("王五", "张三丰") < 50
    assert score("张三", "张三丰") < 90  # a shorter name is no hit


@pytest.mark.django_db(transaction=True)
def test_import_versions_and_hits_with_score():
    olivia = staff_user("olivia", "compliance_officer")
    v1 = screening_list_import(text=LIST_V1, name="UN", version="2026-11-01", by=olivia, source="un.csv")
    assert (v1.entries_count, v1.active) == (2, True)
    [hit] = screen_name(name="张三峰", subject_ref="withdrawal:1", context="payee")
    assert (hit.matched_name, hit.matched_on, hit.score, hit.screening_list) == (
        "张三丰",
        "pinyin",
        Decimal("100.00"),
        v1,
    )
    assert hit.entry.reference == "UN-001"
    assert screen_name(name="张君宝", subject_ref="kyc:2", context="kyc")[0].matched_name == "张君宝"  # an alias
    assert screen_name(name="王五", subject_ref="kyc:3", context="kyc") == []

    v2 = screening_list_import(text=LIST_V2, name="UN", version="2026-11-20", by=olivia)
    v1.refresh_from_db()
    assert not v1.active and v2.active and ScreeningList.objects.count() == 2  # the old version is kept
    assert screen_name(name="张三丰", subject_ref="withdrawal:4", context="payee") == []  # no longer listed
    assert screen_name(name="李四光", subject_ref="withdrawal:5", context="payee")[0].screening_list == v2
    assert ScreeningHit.objects.count() == 3

    with pytest.raises(DomainError) as exc:
        screening_list_import(text=LIST_V2, name="UN", version="2026-11-20", by=olivia)
    assert exc.value.code == "invalid_request"  # the same version twice
    with pytest.raises(DomainError) as exc:
        screening_list_import(text="name,kind\n某人,terrorist\n", name="UN", version="x", by=olivia)
    assert exc.value.code == "invalid_request" and exc.value.details["line"] == 2
    with pytest.raises(DomainError) as exc:
        screening_list_import(text=LIST_V2, name="UN", version="y", by=staff_user("pat", "support"))
    assert exc.value.code == "permission_denied"


@pytest.mark.django_db(transaction=True)
def test_a_payee_on_the_list_goes_to_review(sandbox_channel, monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="allow", score=10, reasons=[]),
    )
    clean = MerchantFactory(name="干净 商户", real_name="王五", phone="13911110005")
    listed = MerchantFactory(name="名单 商户", real_name="张三峰", phone="13911110006")

    def submit(m):
        account = m.payout_accounts.get(is_default=True)
        w = withdrawal_submit(merchant_id=m.pk, payout_account_id=account.pk, amount=10_000).withdrawal
        return Withdrawal.objects.get(pk=w.pk)

    assert submit(listed).status == Status.PAID  # no list loaded yet: nothing to screen against
    screening_list_import(text=LIST_V1, name="UN", version="v1", by=staff_user("olivia", "compliance_officer"))
    assert submit(clean).status == Status.PAID
    w = submit(listed)
    assert w.status == Status.PENDING_REVIEW and "screening_hit" in w.risk_reasons
    hit = ScreeningHit.objects.get()
    assert (hit.subject_ref, hit.context, hit.screened_name, hit.matched_name) == (
        f"withdrawal:{w.pk}", "payee", "张三峰", "张三丰"
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_import_page_in_the_admin():
    client = staff_client(staff_user("olivia", "compliance_officer"))
    url = "/admin/compliance/screeninglist/import/"
    assert "导入制裁 / PEP 名单的新版本" in client.get(url).content.decode()
    upload = SimpleUploadedFile("un.csv", LIST_V1.encode())
    client.post(url, {"name": "UN", "version": "v1", "entries": upload})
    assert ScreeningList.objects.get().entries_count == 2
    assert staff_client(staff_user("pat", "support")).get(url).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_kyc_names_are_screened_daily_once_per_list_version(sandbox_channel):
    from operations.compliance_jobs import compliance_daily, screening_kyc_scan

    assert screening_kyc_scan() == 0  # no list loaded
    listed = MerchantFactory(name="名单 商户", real_name="张三峰", phone="13911110007")
    MerchantFactory(name="干净 商户", real_name="王五", phone="13911110008")
    olivia = staff_user("olivia", "compliance_officer")
    screening_list_import(text=LIST_V1, name="UN", version="v1", by=olivia)
    assert screening_kyc_scan() == 1
    assert compliance_daily()["kyc_screening_hits"] == 0  # recorded once per list version
    hit = ScreeningHit.objects.get()
    assert (hit.subject_ref, hit.context, hit.matched_name) == (f"kyc:{listed.kyc.pk}", "kyc", "张三丰")
    screening_list_import(text=LIST_V1 + "李四光,sanction\n", name="UN", version="v2", by=olivia)
    assert screening_kyc_scan() == 1  # a new version screens everyone again
