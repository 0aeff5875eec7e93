from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Draft large-value / suspicious reports for recent withdrawals and reconcile custody for today."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        # The orchestrating app feeds compliance; imported by path to keep compliance independent of it.
        result = import_string("withdrawals.compliance_jobs.compliance_daily")()
        self.stdout.write(str(result))
