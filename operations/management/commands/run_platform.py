"""`make run`: migrate, seed the demo, then run the web server, a real Celery worker (with beat), the sandbox
gateway and the sandbox SMS receiver as child processes until Ctrl-C. Uses whatever DATABASE_URL /
CELERY_BROKER_URL say; with neither set that is SQLite and the filesystem broker, so it needs no server.

It is the demo: it runs only in demo mode (DEMO_MODE=1 with DJANGO_DEBUG=1, both set by `make run`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations.demo import STAFF


class Command(BaseCommand):
    help = "Run the whole platform for a demo: web, worker + beat, sandbox gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("RUN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("RUN_PORT", "8000")))
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("run_platform is the demo: run it with DEMO_MODE=1 DJANGO_DEBUG=1 (`make run` does)")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        python = sys.executable
        var = Path(settings.VAR_DIR)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PLATFORM_BASE_URL": f"http://{o['host']}:{o['port']}"}
        procs: list[tuple[str, subprocess.Popen]] = []

        def start(name: str, argv: list[str]) -> None:
            procs.append((name, subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR)))

        # The gateway first: it creates the key material seed_demo puts into the channels' config.
        gateway = Path(settings.BASE_DIR, "channels", "management", "commands", "sandbox_gateway.py")
        if gateway.exists():
            port = settings.SANDBOX_GATEWAY_URL.rsplit(":", 1)[-1].strip("/")
            start(
                "gateway",
                [
                    python,
                    "manage.py",
                    "sandbox_gateway",
                    "--port",
                    port,
                    "--data-dir",
                    str(Path(settings.SANDBOX_GATEWAY_DATA_DIR).resolve()),
                    "--quiet",
                ],
            )
            self._wait_for_gateway()
        # The merchants' "phones": the Alibaba Cloud SMS stand-in the SMS provider points at in demo mode.
        sms_port = settings.SMS_SANDBOX_URL.rstrip("/").rsplit(":", 1)[-1]
        start("sms", [python, "manage.py", "sandbox_sms", "--port", sms_port, "--quiet"])
        self._wait_for(settings.SMS_SANDBOX_URL.rstrip("/") + "/_sandbox/health", "sandbox SMS receiver")
        if not o["no_seed"]:
            settings.PLATFORM_BASE_URL = env["PLATFORM_BASE_URL"]  # the channels' notify_url points here
            call_command("seed_demo")
        start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "-l",
                "INFO",
                "--concurrency",
                "2",
                "--schedule",
                str(var / "celerybeat-schedule"),
            ],
        )
        start("web", [python, "manage.py", "runserver", f"{o['host']}:{o['port']}", "--noreload"])
        base = f"http://{o['host']}:{o['port']}"
        db = settings.DATABASES["default"]
        self.stdout.write(
            self.style.SUCCESS(
                f"\nPlatform running (database: {db['ENGINE'].rsplit('.', 1)[-1]}, broker: {settings.CELERY_BROKER_URL.split('://')[0]})\n"
                f"  Merchant site : {base}/            (alice / bob / carol, password demo-pass-2026)\n"
                f"  Review admin  : {base}/admin/      "
                f"({', '.join(username for username, _label, _group in STAFF)}; same password, then the TOTP "
                f"code the code page shows in demo mode)\n"
                f"  Partner API   : {base}/api/v1/     (Authorization: Bearer <API key printed above>)\n"
                f"  Operations    : {base}/admin/ops/  (channel health, breakers, alerts; user ops or admin)\n"
                f"  Monitoring    : {base}/metrics  {base}/healthz/ready\n"
                f"  Gateway       : {settings.SANDBOX_GATEWAY_URL}/_control/  (fault scripts: docs/channels.md)\n"
                f"  SMS phones    : {settings.SMS_SANDBOX_URL.rstrip('/')}/_sandbox/inbox?phone=…  "
                f"(codes also appear on the withdrawal page in demo mode)\n"
                f"Press Ctrl-C to stop.\n"
            )
        )

        stopping = False

        def stop(*_args: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs:
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the platform")
                        stopping = True
                time.sleep(0.5)
        finally:
            for _name, proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.time() + 10
            for _name, proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    proc.kill()

    def _wait_for_gateway(self, timeout: float = 30.0) -> None:
        self._wait_for(settings.SANDBOX_GATEWAY_URL.rstrip("/") + "/_control/health", "sandbox gateway", timeout)

    def _wait_for(self, url: str, what: str, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stderr.write(f"{what} did not answer at {url} within {timeout:.0f}s; going on anyway")
