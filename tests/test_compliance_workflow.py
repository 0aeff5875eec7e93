"""The report workflow (issue 13): draft → reviewed → filed or dismissed, who and when at each step, a
dismissal needs a reason and a second officer (four eyes); the admin's buttons and actions for the compliance
role; the report page shows ¥ amounts and grounds as sentences."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from compliance.models import TransactionReport
from compliance.presenters import grounds_sentences
from compliance.services import report_dismiss, report_draft, report_file, report_narrative_edit, report_review
from config.errors import DomainError
from tests.staff import staff_client, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

SH = ZoneInfo("Asia/Shanghai")
STRUCTURING = {
    "rule": "structuring",
    "patterns": ["days"],
    "band_low": 4_500_000,
    "threshold": 5_000_000,
    "window_days": 7,
    "days": ["2026-03-09", "2026-03-10", "2026-03-11"],
    "merchants": [{"id": 1, "name": "Sam 点卡"}],
    "total": 14_700_000,
    "transactions": [
        {"ref": f"withdrawal:{i}", "merchant_id": 1, "merchant_name": "Sam 点卡", "amount": 4_900_000,
         "at": f"2026-03-{8 + i:02d}T11:00:00+08:00"}
        for i in (1, 2, 3)
    ],
}  # fmt: skip


def draft(ref="withdrawal:1", grounds=None, amount=5_000_000):
    return report_draft(kind="suspicious", subject_ref=ref, merchant_id=1, merchant_name="Sam 点卡", amount=amount,
                        occurred_at=datetime(2026, 3, 11, 11, tzinfo=SH), grounds=grounds or [STRUCTURING],
                        holder_name="王五", id_number="110101199003074477",
                        account_number="6222020200112233445")  # fmt: skip


def test_draft_reviewed_dismissed_with_a_reason_by_a_second_officer():
    olivia = staff_user("olivia", "compliance_officer")
    oscar = staff_user("oscar", "compliance_officer")
    report = draft()
    assert report.status == "draft"
    with pytest.raises(DomainError) as exc:
        report_dismiss(report_id=report.pk, officer=oscar, reason="not reportable")
    assert exc.value.code == "report_invalid_state"  # reviewed first
    with time_machine.travel(datetime(2026, 3, 12, 9, 30, tzinfo=SH), tick=False):
        report_review(report_id=report.pk, officer=olivia, note="evidence checked", narrative="三天三笔 4.9 万")
    with pytest.raises(DomainError) as exc:
        report_dismiss(report_id=report.pk, officer=olivia, reason="not reportable")
    assert exc.value.code == "report_same_reviewer"  # four eyes
    with pytest.raises(DomainError) as exc:
        report_dismiss(report_id=report.pk, officer=oscar, reason="  ")
    assert exc.value.code == "report_dismiss_reason_required"
    with time_machine.travel(datetime(2026, 3, 12, 15, 0, tzinfo=SH), tick=False):
        report_dismiss(report_id=report.pk, officer=oscar, reason="salary payments of the shop, documented")
    report.refresh_from_db()
    assert (report.status, report.reviewed_by, report.decided_by) == ("dismissed", olivia, oscar)
    assert report.reviewed_at == datetime(2026, 3, 12, 9, 30, tzinfo=SH)
    assert report.decided_at == datetime(2026, 3, 12, 15, 0, tzinfo=SH)
    assert (report.review_note, report.narrative) == ("evidence checked", "三天三笔 4.9 万")
    assert report.decision_note == "salary payments of the shop, documented"
    with pytest.raises(DomainError) as exc:
        report_narrative_edit(report_id=report.pk, officer=olivia, narrative="later")
    assert exc.value.code == "report_invalid_state"  # final


def test_the_reviewer_may_file_and_others_may_not_act(reviewer_bob):
    olivia = staff_user("olivia", "compliance_officer")
    report = draft()
    for step in (lambda: report_review(report_id=report.pk, officer=reviewer_bob),
                 lambda: report_file(report_id=report.pk, officer=reviewer_bob)):  # fmt: skip
        with pytest.raises(DomainError) as exc:
            step()
        assert exc.value.code == "permission_denied"
    report_review(report_id=report.pk, officer=olivia)
    report_file(report_id=report.pk, officer=olivia, note="filing no. 2026-0311-001")
    report.refresh_from_db()
    assert (report.status, report.decided_by, report.decision_note) == ("filed", olivia, "filing no. 2026-0311-001")


def test_grounds_read_as_sentences():
    sentences = grounds_sentences(
        [
            {"rule": "large_value", "amount": 5_000_000, "threshold": 5_000_000},
            STRUCTURING,
            "risk_blocked",
            "rejected_by_review: 银行卡与身份不符",
            "device_farm",
        ]
    )
    assert sentences[0] == "单笔金额 ¥50,000.00 达到大额交易报告标准 ¥50,000.00（含本数）。"
    assert sentences[1].startswith("疑似拆分交易以规避大额报告：7 天内同一商户在多个不同日期提现略低于大额标准")
    assert "共 3 笔、合计 ¥147,000.00" in sentences[1]
    assert "withdrawal:1（Sam 点卡 ¥49,000.00，2026-03-09 11:00）" in sentences[1]
    assert sentences[2:] == [
        "风控拦截了这笔提现。",
        "审核员拒绝了这笔提现，理由：银行卡与身份不符。",
        "风控规则命中：device_farm。",
    ]


def test_report_page_buttons_and_four_eyes_in_the_admin():
    olivia, oscar = staff_user("olivia", "compliance_officer"), staff_user("oscar", "compliance_officer")
    support = staff_client(staff_user("pat", "support"))
    as_olivia, as_oscar = staff_client(olivia), staff_client(oscar)
    report = draft()
    page = f"/admin/compliance/transactionreport/{report.pk}/change/"
    html = as_olivia.get(page).content.decode()
    assert "¥50,000.00" in html and "疑似拆分交易" in html and "withdrawal:3（Sam 点卡 ¥49,000.00" in html
    assert '"rule"' not in html and "5000000" not in html  # no raw JSON, no bare fen
    assert "110101199003074477" not in html and "6222020200112233445" not in html  # masked as stored
    assert "复核 Review" in html and "排除 Dismiss" not in html

    assert support.post(f"/admin/compliance/transactionreport/{report.pk}/review/", {"text": ""}).status_code == 403
    as_olivia.post(f"/admin/compliance/transactionreport/{report.pk}/review/", {"text": "checked"})
    assert TransactionReport.objects.get().status == "reviewed"
    html = as_olivia.get(page).content.decode()
    assert "报送 File" in html and "排除 Dismiss" not in html and "四眼原则" in html
    as_olivia.post(f"/admin/compliance/transactionreport/{report.pk}/dismiss/", {"text": "mine"})
    assert TransactionReport.objects.get().status == "reviewed"  # the reviewer cannot dismiss
    as_oscar.post(f"/admin/compliance/transactionreport/{report.pk}/dismiss/", {"text": ""})
    assert TransactionReport.objects.get().status == "reviewed"  # no reason
    assert "排除 Dismiss" in as_oscar.get(page).content.decode()
    as_oscar.post(f"/admin/compliance/transactionreport/{report.pk}/dismiss/", {"text": "documented payroll"})
    report.refresh_from_db()
    assert (report.status, report.reviewed_by, report.decided_by, report.decision_note) == (
        "dismissed", olivia, oscar, "documented payroll"
    )  # fmt: skip


def test_bulk_review_then_file_from_the_list():
    client = staff_client(staff_user("olivia", "compliance_officer"))
    a, b = draft("withdrawal:1"), draft("withdrawal:2")
    url = "/admin/compliance/transactionreport/"
    client.post(url, {"action": "file_reports", "_selected_action": [a.pk, b.pk]})
    assert set(TransactionReport.objects.values_list("status", flat=True)) == {"draft"}  # not reviewed yet
    client.post(url, {"action": "review_reports", "_selected_action": [a.pk, b.pk]})
    client.post(url, {"action": "file_reports", "_selected_action": [a.pk]})
    assert dict(TransactionReport.objects.values_list("subject_ref", "status")) == {
        "withdrawal:1": "filed", "withdrawal:2": "reviewed"
    }  # fmt: skip


def test_a_draft_narrative_from_the_facts_that_the_officer_edits():
    report = draft()
    assert report.narrative.startswith("Sam 点卡（商户 1）2026-03-11 11:00 withdrawal:1，金额 ¥50,000.00。疑似拆分交易")
    edited = report_narrative_edit(report_id=report.pk, officer=staff_user("olivia", "compliance_officer"),
                                   narrative="  三天内三笔 4.9 万，同一张卡。 ")  # fmt: skip
    assert edited.narrative == "三天内三笔 4.9 万，同一张卡。"
