#!/usr/bin/env python3
"""`make serve`: what production runs, on this machine.

Migrations and static files, then gunicorn serving config.wsgi, two Celery worker processes, one Celery beat
and the sandbox gateway, with DJANGO_DEBUG=0, PostgreSQL and Redis. Watches them until Ctrl-C (or until one
of them exits) and then stops them all.

Two worker processes rather than one with more concurrency: a crashed worker process takes its whole prefork
pool with it, so two keep payouts moving while one restarts, and two processes consuming the same queue is
the topology in which duplicate tasks for one withdrawal really run in parallel — the one `make chaos` tests.
Each worker has a prefork pool of CELERY_WORKER_CONCURRENCY (default 2): payout tasks mostly wait on the
channel, so four in flight fit two cores.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from platform_procs import (
    ROOT,
    Processes,
    beat_argv,
    gateway_argv,
    port_taken,
    postgres_problem,
    redis_problem,
    wait_http,
    web_argv,
    worker_argv,
)


def refuse(message: str) -> None:
    print(f"make serve: {message}", file=sys.stderr)
    raise SystemExit(2)


def secret_key(var_dir: Path) -> str:
    """DJANGO_SECRET_KEY from the environment, else one made once for this machine and kept in var/."""
    if os.environ.get("DJANGO_SECRET_KEY"):
        return os.environ["DJANGO_SECRET_KEY"]
    path = var_dir / "serve-secret-key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
        print(f"make serve: no DJANGO_SECRET_KEY set; generated one in {path} (set it in production)")
    return path.read_text().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("SERVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVE_PORT", "8000")))
    parser.add_argument("--gateway-port", type=int, default=int(os.environ.get("SERVE_GATEWAY_PORT", "8700")))
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--no-demo", action="store_true", help="do not seed the demo merchants and staff")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not broker_url.startswith("redis"):
        refuse(
            "production runs on PostgreSQL and Redis: set DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://… "
            "(the Makefile defaults to postgres://postgres@127.0.0.1:5432/kamen_serve and redis://127.0.0.1:6379/0)"
        )
    problem = postgres_problem(database_url, create=True) or redis_problem(broker_url)
    if problem:
        refuse(f"{problem}\n  start them with `make services` (or point DATABASE_URL / CELERY_BROKER_URL elsewhere)")
    for what, port in (("web", args.port), ("sandbox gateway", args.gateway_port)):
        if port_taken(args.host if what == "web" else "127.0.0.1", port):
            refuse(f"port {port} for the {what} is in use (another `make run` / `make serve`?); choose another")

    var_dir = Path(os.environ.get("APP_VAR_DIR", str(ROOT / "var")))
    base = f"http://{args.host}:{args.port}"
    gateway_url = f"http://127.0.0.1:{args.gateway_port}"
    os.environ.update(
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secret_key(var_dir),
            "DJANGO_REQUIRE_SECRET": "1",
            "PLATFORM_BASE_URL": os.environ.get("PLATFORM_BASE_URL", base),
            "SANDBOX_GATEWAY_URL": gateway_url,
            "GUNICORN_BIND": os.environ.get("GUNICORN_BIND", f"{args.host}:{args.port}"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.host not in ("127.0.0.1", "localhost") and "DJANGO_ALLOWED_HOSTS" not in os.environ:
        print(f"make serve: binding {args.host}; set DJANGO_ALLOWED_HOSTS to the names clients use", file=sys.stderr)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    procs = Processes(env=dict(os.environ))
    gateway_dir = Path(settings.SANDBOX_GATEWAY_DATA_DIR).resolve()
    procs.start("gateway", gateway_argv(port=args.gateway_port, data_dir=gateway_dir))
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not wait_http(f"{gateway_url}/_control/health", timeout=30, proc=procs.items["gateway"].proc):
            refuse(f"the sandbox gateway did not come up on {gateway_url}")
        if args.no_demo:
            from withdrawals.management.commands.seed_demo import seed_gateway_channels

            seed_gateway_channels()  # the sandbox gateway's channels, following its keys and address
        else:
            call_command("seed_demo")
        concurrency = int(os.environ.get("CELERY_WORKER_CONCURRENCY", "2"))
        for n in range(1, args.workers + 1):
            procs.start(f"worker{n}", worker_argv(node=f"worker{n}", concurrency=concurrency))
        procs.start("beat", beat_argv(schedule=var_dir / "celerybeat-schedule"))
        procs.start("web", web_argv())
        if not wait_http(f"{base}/healthz/ready", timeout=60, proc=procs.items["web"].proc):
            print("make serve: /healthz/ready did not answer 200 within 60 s; see the logs above", file=sys.stderr)
        print(
            f"\nProduction server running (gunicorn, {args.workers} Celery workers × {concurrency}, beat, "
            f"sandbox gateway; PostgreSQL, Redis, DEBUG off)\n"
            f"  Merchant site : {base}/\n"
            f"  Review admin  : {base}/admin/\n"
            f"  Partner API   : {base}/api/v1/   (Authorization: Bearer <API key>)\n"
            f"  Operations    : {base}/admin/ops/\n"
            f"  Monitoring    : {base}/metrics  {base}/healthz/ready\n"
            f"  Gateway       : {gateway_url}/_control/\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )
        while not stopping:
            gone = procs.exited()
            if gone:
                name, code = gone[0]
                print(f"make serve: {name} exited with {code}; stopping everything", file=sys.stderr)
                break
            time.sleep(0.5)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
