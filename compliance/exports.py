"""Reports for filing: CSV for people and an XML batch whose schema is kept in the repo
(compliance/schemas/transaction_report_v1.xsd). Every XML batch is validated against it before it leaves.
Fields: customer identity (masked as stored), account, counterparty card (masked), amount, currency, time,
channel, grounds (as sentences)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.utils import timezone
from lxml import etree

from config.money import fen_to_yuan

from .models import TransactionReport
from .presenters import grounds_sentences

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "transaction_report_v1.xsd"
NAMESPACE = "urn:kamen:compliance:transaction-report:1"

CSV_COLUMNS = [
    "report_id",
    "kind",
    "status",
    "subject_ref",
    "customer_name",
    "customer_id_number_masked",
    "merchant_id",
    "merchant_name",
    "counterparty_card_masked",
    "amount",
    "currency",
    "time",
    "channel",
    "grounds",
    "narrative",
    "deadline",
]


def _time(moment: datetime) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds")


def report_row(report: TransactionReport) -> dict[str, str]:
    return {
        "report_id": str(report.pk),
        "kind": report.kind,
        "status": report.status,
        "subject_ref": report.subject_ref,
        "customer_name": report.holder_name,
        "customer_id_number_masked": report.id_number_masked,
        "merchant_id": str(report.merchant_id),
        "merchant_name": report.merchant_name,
        "counterparty_card_masked": report.account_masked,
        "amount": fen_to_yuan(report.amount, grouping=False),
        "currency": report.currency,
        "time": _time(report.occurred_at),
        "channel": report.channel,
        "grounds": " ".join(grounds_sentences(report.grounds)),
        "narrative": report.narrative,
        "deadline": _time(report.deadline),
    }


def reports_csv(reports: Iterable[TransactionReport]) -> str:
    """UTF-8 CSV with a header row (with a BOM, so spreadsheet programs read the Chinese right)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for report in reports:
        writer.writerow(report_row(report))
    return out.getvalue()


@cache
def report_schema() -> Any:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def xml_errors(data: bytes) -> list[str]:
    """What is wrong with an XML batch against the schema ([] when it is valid)."""
    try:
        document = etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        return [str(exc)]
    schema = report_schema()
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def reports_xml(reports: Iterable[TransactionReport], *, now: datetime | None = None) -> bytes:
    """The XML batch, validated against the XSD (ValueError naming the problems if it would not be)."""
    ns = f"{{{NAMESPACE}}}"
    items = list(reports)
    root = etree.Element(
        f"{ns}ReportBatch", nsmap={None: NAMESPACE}, generatedAt=_time(now or timezone.now()), count=str(len(items))
    )

    def sub(parent: Any, tag: str, text: str = "", **attrs: str) -> Any:
        element = etree.SubElement(parent, f"{ns}{tag}", **attrs)
        element.text = text
        return element

    for report in items:
        r = sub(root, "Report", id=str(report.pk), kind=report.kind, status=report.status)
        r.text = None
        sub(r, "SubjectRef", report.subject_ref)
        customer = sub(r, "Customer")
        sub(customer, "Name", report.holder_name)
        sub(customer, "IdNumberMasked", report.id_number_masked)
        account = sub(r, "Account")
        sub(account, "MerchantId", str(report.merchant_id))
        sub(account, "MerchantName", report.merchant_name)
        sub(r, "CounterpartyCard", report.account_masked)
        sub(r, "Amount", fen_to_yuan(report.amount, grouping=False), currency=report.currency)
        sub(r, "Time", _time(report.occurred_at))
        sub(r, "Channel", report.channel)
        grounds = sub(r, "Grounds")
        for sentence in grounds_sentences(report.grounds) or ["—"]:
            sub(grounds, "Ground", sentence)
        if report.narrative:
            sub(r, "Narrative", report.narrative)
        sub(r, "Deadline", _time(report.deadline))
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    errors = xml_errors(data)
    if errors:
        raise ValueError(f"the report batch does not match {SCHEMA_PATH.name}: {errors}")
    return data
