"""Retention: money, KYC, report, review and audit records are kept at least RECORD_RETENTION_YEARS (5). The
database refuses their deletion (compliance migration 0004, config.dbtriggers); the expiry job copies what is
past retention — and only that — to an archive file, once per row, and records the run (RetentionArchive).
Nothing is deleted by it."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import RetentionArchive

# The tables of kept records, each with a created_at column. Read by table name: compliance imports no
# withdrawal model.
KEPT_TABLES = (
    "compliance_transactionreport",
    "compliance_custodyreconciliation",
    "accounts_kycrecord",
    "accounts_auditevent",
    "wallets_transfer",
    "wallets_entry",
    "withdrawals_withdrawal",
    "withdrawals_withdrawalevent",
    "withdrawals_withdrawalapproval",
)
BATCH = 5000


def retention_cutoff(now: datetime | None = None) -> datetime:
    """RECORD_RETENTION_YEARS calendar years before ``now`` (Shanghai time; 29 Feb falls back to 28 Feb)."""
    local = timezone.localtime(now or timezone.now())
    year = local.year - settings.RECORD_RETENTION_YEARS
    try:
        return local.replace(year=year)
    except ValueError:
        return local.replace(year=year, day=28)


def records_archive(*, out_dir: Path, now: datetime | None = None) -> list[RetentionArchive]:
    """Copy every kept row created before the cutoff and not archived before to ``out_dir`` (one JSON-lines file
    per table and run); returns the runs' records."""
    cutoff = retention_cutoff(now)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = timezone.localtime(now or timezone.now()).strftime("%Y%m%dT%H%M%S")
    runs = []
    for table in KEPT_TABLES:
        done = RetentionArchive.objects.filter(table=table).order_by("-last_id").values_list("last_id", flat=True)
        after = done.first() or 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT * FROM {table} WHERE created_at < %s AND id > %s ORDER BY id LIMIT {BATCH}",
                [cutoff, after],
            )
            columns = [c[0] for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        if not rows:
            continue
        text = "".join(json.dumps(r, ensure_ascii=False, default=str, sort_keys=True) + "\n" for r in rows)
        path = out_dir / f"{table}-{stamp}-{rows[0]['id']}-{rows[-1]['id']}.jsonl"
        path.write_text(text, encoding="utf-8")
        runs.append(
            RetentionArchive.objects.create(
                table=table,
                cutoff=cutoff,
                first_id=rows[0]["id"],
                last_id=rows[-1]["id"],
                rows=len(rows),
                path=str(path),
                sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
        )
    return runs
