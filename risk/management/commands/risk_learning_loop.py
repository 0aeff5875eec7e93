import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from risk.learning import risk_learning_loop_run


class Command(BaseCommand):
    help = "Run the risk learning loop once (fraud feedback → lists, clean labels, shared IP/device report)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window-days", type=int)
        parser.add_argument("--shared-min", type=int, help="accounts sharing an IP/device before it is listed")

    def handle(self, *args: Any, **o: Any) -> None:
        run = risk_learning_loop_run(window_days=o["window_days"], shared_min=o["shared_min"])
        summary = dict(run.summary)
        shared = summary.pop("shared", [])
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
        for s in shared[:20]:
            self.stdout.write(
                f"  {s['kind']:7} {s['value']:40} {s['accounts']} accounts, {s['withdrawals']} withdrawals"
                + ("  [listed]" if s["listed"] else "")
            )
