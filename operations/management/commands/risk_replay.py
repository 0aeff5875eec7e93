import statistics
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Merchant
from operations.replay import read_events, replay


class Command(BaseCommand):
    help = "Replay an events.jsonl (shared risk format) through the live services; write one decision per withdrawal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("events", type=Path)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument(
            "--learning-loop",
            action="store_true",
            help="run the learning loop once per event day (its shared-IP/device entries then add score)",
        )

    def handle(self, *args: Any, **o: Any) -> None:
        if not o["events"].is_file():
            raise CommandError(f"{o['events']}: no such file")
        call_command("migrate", interactive=False, verbosity=0)
        if Merchant.objects.exists():
            raise CommandError("the database is not empty: replay into an empty database (history must start clean)")
        try:
            with o["out"].open("w", encoding="utf-8") as out:
                stats = replay(read_events(o["events"]), out, learning_loop=o["learning_loop"])
        except ValueError as exc:
            raise CommandError(str(exc))
        ms = sorted(stats.decision_ms) or [0.0]
        self.stdout.write(
            f"replayed {stats.events} events in {stats.seconds:.1f} s "
            f"({stats.events / max(stats.seconds, 1e-9):.0f}/s); "
            f"{stats.withdrawals} withdrawals → {o['out']}; decisions {stats.by_decision}; "
            f"refused before risk {stats.refused}; submit latency p50 {statistics.median(ms):.1f} ms "
            f"p99 {ms[int(0.99 * (len(ms) - 1))]:.1f} ms"
        )
