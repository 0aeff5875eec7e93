from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wallets.selectors import ledger_problems
from withdrawals.selectors import withdrawal_ledger_problems


class Command(BaseCommand):
    help = "Verify every ledger invariant; exits non-zero naming each broken one."

    def handle(self, *args: Any, **options: Any) -> None:
        # The ledger's own invariants, then the withdrawals' (held = what withdrawals still hold).
        problems = [*ledger_problems(), *withdrawal_ledger_problems()]
        if problems:
            for p in problems:
                self.stderr.write(f"LEDGER PROBLEM: {p}")
            raise CommandError(f"{len(problems)} ledger invariant(s) broken")
        self.stdout.write(
            self.style.SUCCESS("ledger ok: every transfer sums to zero, balances match entries, none negative")
        )
