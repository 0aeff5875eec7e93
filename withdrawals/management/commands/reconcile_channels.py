"""python manage.py reconcile_channels [--date YYYY-MM-DD] [--channel CODE ...]  (default: yesterday)"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from withdrawals.reconciliation import reconcile_channels


class Command(BaseCommand):
    help = "Import channel statements for a day and record differences against our payouts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="YYYY-MM-DD, local day (default: yesterday)")
        parser.add_argument("--channel", action="append", dest="channels", help="channel code (repeatable)")

    def handle(self, *args: object, **options: object) -> None:
        raw = options.get("date")
        try:
            date = dt.date.fromisoformat(str(raw)) if raw else timezone.localdate() - dt.timedelta(days=1)
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, not {raw!r}")
        imports = reconcile_channels(date=date, codes=options.get("channels") or None)  # type: ignore[arg-type]
        for s in imports:
            self.stdout.write(
                f"{s.channel_code} {s.date}: {s.line_count} lines, {s.matched_count} matched, "
                f"{s.difference_count} open differences"
            )
        if not imports:
            self.stdout.write("no statements imported")
