"""python manage.py sandbox_sms --port 8710 — the demo's stand-in for Alibaba Cloud SMS (see risk.sandbox_sms)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from risk.sandbox_sms import SandboxSms, serve
from risk.sms import SMS_TEMPLATE_TEXT


class Command(BaseCommand):
    help = "Run the sandbox SMS receiver (Alibaba Cloud SendSms protocol) on loopback, with an inbox per phone."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8710)
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        host = str(options["host"])
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise CommandError("the sandbox SMS receiver listens on loopback only")
        if not (settings.ALIYUN_SMS_ACCESS_KEY_ID and settings.ALIYUN_SMS_ACCESS_KEY_SECRET):
            raise CommandError("set ALIYUN_SMS_ACCESS_KEY_ID / ALIYUN_SMS_ACCESS_KEY_SECRET (demo mode sets them)")
        book = SandboxSms(
            access_key_id=settings.ALIYUN_SMS_ACCESS_KEY_ID,
            access_key_secret=settings.ALIYUN_SMS_ACCESS_KEY_SECRET,
            templates={settings.ALIYUN_SMS_TEMPLATE_CODE: SMS_TEMPLATE_TEXT},
        )
        server = serve(host=host, port=int(str(options["port"])), book=book, quiet=bool(options["quiet"]))
        self.stdout.write(f"sandbox SMS receiver on http://{host}:{options['port']}/ (inbox: /_sandbox/inbox)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
