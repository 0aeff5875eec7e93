from typing import Any

from django.core.management.base import BaseCommand

from workdays.loader import load
from workdays.models import CalendarDay


class Command(BaseCommand):
    help = "Load (upsert) the holiday / make-up working day files of workdays/data/ into the calendar."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(str(load(CalendarDay)))
