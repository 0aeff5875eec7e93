"""python manage.py sandbox_gateway --host 127.0.0.1 --port 8700 --data-dir var/gateway"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from channels.gateway import run


class Command(BaseCommand):
    help = "Run the sandbox payout gateway (bank-direct, Alipay, WeChat Pay v3 stand-ins) on loopback."
    requires_system_checks: list[str] = []  # a stand-in provider needs neither the database nor the URLconf

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8700)
        parser.add_argument("--data-dir", default="var/gateway", help="store, keys.json and key files live here")
        parser.add_argument("--quiet", action="store_true", help="do not log each request")

    def handle(self, *args: object, **options: object) -> None:
        run(
            str(options["host"]),
            int(str(options["port"])),
            Path(str(options["data_dir"])),
            bool(options["quiet"]),
        )
