from typing import Any

from django.core.management.base import BaseCommand

from operations.compliance_jobs import compliance_daily


class Command(BaseCommand):
    help = "Draft large-value / suspicious reports for recent withdrawals and reconcile custody for today."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(str(compliance_daily()))
