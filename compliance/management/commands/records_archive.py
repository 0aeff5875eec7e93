from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance.retention import records_archive


class Command(BaseCommand):
    help = "Copy kept records past RECORD_RETENTION_YEARS to archive files (JSON lines); nothing is deleted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="the archive folder")

    def handle(self, *args: Any, **options: Any) -> None:
        for run in records_archive(out_dir=Path(options["out"])):
            self.stdout.write(f"{run.table}: {run.rows} rows ({run.first_id}–{run.last_id}) → {run.path}")
