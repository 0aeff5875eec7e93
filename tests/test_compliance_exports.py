"""Exports for filing (issue 13): CSV and an XML batch that validates against the XSD kept in the repo
(compliance/schemas/transaction_report_v1.xsd), with customer identity masked as stored, account, counterparty
card, amount, currency, time, channel and grounds."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from compliance.exports import NAMESPACE, SCHEMA_PATH, reports_csv, reports_xml, xml_errors
from compliance.models import TransactionReport
from compliance.services import report_draft
from tests.staff import staff_client, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

SH = ZoneInfo("Asia/Shanghai")
ID_NUMBER = "110101199003074477"
CARD = "6222020200112233445"


def reports():
    large = report_draft(kind="large_value", subject_ref="withdrawal:7", merchant_id=3, merchant_name="Alice 游戏点卡",
                         amount=5_000_000, occurred_at=datetime(2026, 3, 9, 10, 15, tzinfo=SH),
                         grounds=[{"rule": "large_value", "amount": 5_000_000, "threshold": 5_000_000}],
                         holder_name="张三", id_number=ID_NUMBER, account_number=CARD, channel="sandbox")  # fmt: skip
    suspicious = report_draft(kind="suspicious", subject_ref="withdrawal:8", merchant_id=3,
                              merchant_name="Alice 游戏点卡", amount=1,
                              occurred_at=datetime(2026, 3, 9, 23, 59, tzinfo=SH),
                              grounds=["risk_blocked", "device_farm"], holder_name="张三", id_number=ID_NUMBER,
                              account_number=CARD)  # fmt: skip
    return [large, suspicious]


def test_xml_export_validates_against_the_xsd_in_the_repo():
    data = reports_xml(TransactionReport.objects.filter(pk__in=[r.pk for r in reports()]).order_by("pk"))
    # Validated here with the schema file itself, independently of the exporter's own check.
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    document = etree.fromstring(data)
    assert schema.validate(document), schema.error_log
    ns = {"r": NAMESPACE}
    assert document.get("count") == "2"
    first = document.find("r:Report", ns)
    assert (first.get("kind"), first.get("status")) == ("large_value", "draft")
    assert first.findtext("r:Customer/r:Name", namespaces=ns) == "张三"
    assert first.findtext("r:Customer/r:IdNumberMasked", namespaces=ns) == "110***********4477"
    assert first.findtext("r:Account/r:MerchantId", namespaces=ns) == "3"
    assert first.findtext("r:CounterpartyCard", namespaces=ns).endswith("3445")
    assert first.findtext("r:Amount", namespaces=ns) == "50000.00"
    assert first.find("r:Amount", ns).get("currency") == "CNY"
    assert first.findtext("r:Time", namespaces=ns) == "2026-03-09T10:15:00+08:00"
    assert first.findtext("r:Channel", namespaces=ns) == "sandbox"
    assert first.findtext("r:Grounds/r:Ground", namespaces=ns).startswith("单笔金额 ¥50,000.00")
    second = document.findall("r:Report", ns)[1]
    assert second.findtext("r:Amount", namespaces=ns) == "0.01"
    assert [g.text for g in second.findall("r:Grounds/r:Ground", ns)] == [
        "风控拦截了这笔提现。",
        "风控规则命中：device_farm。",
    ]
    assert ID_NUMBER.encode() not in data and CARD.encode() not in data


def test_the_schema_refuses_what_a_filing_must_not_contain():
    data = reports_xml(TransactionReport.objects.filter(pk=reports()[0].pk))
    assert xml_errors(data) == []
    assert xml_errors(data.replace(b"110***********4477", ID_NUMBER.encode()))  # a full identity number
    assert xml_errors(data.replace(b">50000.00<", b">50000<"))  # not yuan with two decimals
    assert xml_errors(data.replace(b'currency="CNY"', b'currency="cny"'))
    assert xml_errors(data.replace(b'kind="large_value"', b'kind="other"'))


def test_csv_export_has_every_field():
    text = reports_csv(TransactionReport.objects.filter(pk__in=[r.pk for r in reports()]).order_by("pk"))
    assert text.startswith("\ufeffreport_id,kind,status,subject_ref,customer_name,")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["subject_ref"] for r in rows] == ["withdrawal:7", "withdrawal:8"]
    first = rows[0]
    assert (first["customer_name"], first["customer_id_number_masked"]) == ("张三", "110***********4477")
    assert (first["merchant_id"], first["amount"], first["currency"], first["channel"]) == (
        "3",
        "50000.00",
        "CNY",
        "sandbox",
    )
    assert first["time"] == "2026-03-09T10:15:00+08:00" and first["counterparty_card_masked"].endswith("3445")
    assert first["grounds"] == "单笔金额 ¥50,000.00 达到大额交易报告标准 ¥50,000.00（含本数）。"


def test_export_actions_in_the_admin():
    made = reports()
    client = staff_client(staff_user("olivia", "compliance_officer"))
    url = "/admin/compliance/transactionreport/"
    xml = client.post(url, {"action": "export_xml", "_selected_action": [r.pk for r in made]})
    assert xml["Content-Type"] == "application/xml" and xml_errors(xml.content) == []
    assert xml.content.count(b"<Report ") == 2
    got = client.post(url, {"action": "export_csv", "_selected_action": [made[0].pk]})
    assert got["Content-Type"].startswith("text/csv") and "withdrawal:7" in got.content.decode()
