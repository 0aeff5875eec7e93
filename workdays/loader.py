"""The year files in ``workdays/data/`` (``2026.json``: holidays as date ranges, make-up working days as dates)
into ``CalendarDay`` rows. Used by the data migration (with the migration's model) and by ``workdays_load``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class YearDay:
    date: date
    kind: str  # "holiday" | "makeup_workday"
    name: str
    provisional: bool
    source: str


def year_files() -> list[Path]:
    return sorted(DATA_DIR.glob("[0-9][0-9][0-9][0-9].json"))


def year_days(path: Path) -> list[YearDay]:
    """The days of one year file, checked: every date in the file's year, no date twice, holidays never on a
    make-up day."""
    data = json.loads(path.read_text(encoding="utf-8"))
    year = int(data["year"])
    provisional = data.get("status") != "published"
    source = str(data.get("source", ""))[:200]
    days: dict[date, YearDay] = {}

    def add(day: date, kind: str, name: str) -> None:
        if day.year != year:
            raise ValueError(f"{path.name}: {day} is not in {year}")
        if day in days:
            raise ValueError(f"{path.name}: {day} listed twice")
        days[day] = YearDay(day, kind, name, provisional, source)

    for holiday in data.get("holidays", []):
        start, end = date.fromisoformat(holiday["from"]), date.fromisoformat(holiday["to"])
        if end < start:
            raise ValueError(f"{path.name}: {holiday['name']} ends before it starts")
        day = start
        while day <= end:
            add(day, "holiday", holiday["name"])
            day += timedelta(days=1)
    for makeup in data.get("makeup_working_days", []):
        day = date.fromisoformat(makeup["date"])
        if day.weekday() < 5:
            raise ValueError(f"{path.name}: make-up working day {day} is not a Saturday or Sunday")
        add(day, "makeup_workday", makeup["name"])
    return sorted(days.values(), key=lambda d: d.date)


def load(model: Any, paths: list[Path] | None = None) -> dict[str, int]:
    """Upsert the files' days into ``model`` (CalendarDay or the migration's historical model): missing days are
    created, changed ones updated, and a day that its year's file no longer lists is removed, so a provisional
    year is replaced whole by the published one. Idempotent; returns counts."""
    counts = {"created": 0, "updated": 0, "removed": 0}
    for path in paths if paths is not None else year_files():
        days = year_days(path)
        if not days:
            continue
        year = days[0].date.year
        listed = {d.date for d in days}
        stale = model.objects.filter(date__year=year).exclude(date__in=listed)
        counts["removed"] += stale.count()
        stale.delete()
        existing = {row.date: row for row in model.objects.filter(date__year=year)}
        missing = []
        for d in days:
            fields = {"kind": d.kind, "name": d.name, "provisional": d.provisional, "source": d.source}
            row = existing.get(d.date)
            if row is None:
                missing.append(model(date=d.date, **fields))
            elif any(getattr(row, k) != v for k, v in fields.items()):
                model.objects.filter(pk=row.pk).update(**fields)
                counts["updated"] += 1
        model.objects.bulk_create(missing)
        counts["created"] += len(missing)
    return counts
