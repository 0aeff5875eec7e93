#!/usr/bin/env python3
"""`make serve`: what production runs, on this machine.

Migrations and static files, then gunicorn serving config.wsgi, two Celery worker processes, one Celery beat
and the sandbox gateway (plus the sandbox SMS receiver when no SMS_PROVIDER is configured), with DJANGO_DEBUG=0,
PostgreSQL and Redis. Watches them until Ctrl-C (or until one of them exits) and then stops them all.

Two worker processes rather than one with more concurrency: a crashed worker process takes its whole prefork
pool with it, so two keep payouts moving while one restarts, and two processes consuming the same queue is
the topology in which duplicate tasks for one withdrawal really run in parallel — the one `make chaos` tests.
Each worker has a prefork pool of CELERY_WORKER_CONCURRENCY (default 2): payout tasks mostly wait on the
channel, so four in flight fit two cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shlex
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
    sandbox_sms_env,
    sms_argv,
    wait_http,
    web_argv,
    worker_argv,
)


def refuse(message: str) -> None:
    print(f"make serve: {message}", file=sys.stderr)
    raise SystemExit(2)


LOCAL_SECRETS = ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "FIELD_HASH_KEY")
MADE_HERE = (*LOCAL_SECRETS, "SMS_SANDBOX_SECRET")


def local_secrets(var_dir: Path) -> dict[str, str]:
    """The secrets production takes from the environment; any not set there is made once for this machine and
    kept in var/serve-secrets.json (0600), so sessions and encrypted fields survive a restart."""
    path = var_dir / "serve-secrets.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made = False
    for name in MADE_HERE:
        if not os.environ.get(name) and name not in kept:
            kept[name] = _key32() if name.startswith("FIELD_") else secrets.token_urlsafe(50)
            made = True
    if made:
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(kept, indent=1))
        path.chmod(0o600)
        print(f"make serve: generated local secrets in {path} (set them in the environment in production)")
    return {name: os.environ.get(name) or kept[name] for name in MADE_HERE}


def _key32() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("SERVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVE_PORT", "8000")))
    parser.add_argument("--gateway-port", type=int, default=int(os.environ.get("SERVE_GATEWAY_PORT", "8700")))
    parser.add_argument("--sms-port", type=int, default=int(os.environ.get("SERVE_SMS_PORT", "8710")))
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
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
    sandbox_sms = not os.environ.get("SMS_PROVIDER")  # no SMS account configured: the loopback receiver plays it
    ports = [("web", args.host, args.port), ("sandbox gateway", "127.0.0.1", args.gateway_port)]
    if sandbox_sms:
        ports.append(("sandbox SMS receiver", "127.0.0.1", args.sms_port))
    for what, host, port in ports:
        if port_taken(host, port):
            refuse(f"port {port} for the {what} is in use (another `make run` / `make serve`?); choose another")

    var_dir = Path(os.environ.get("APP_VAR_DIR", str(ROOT / "var")))
    base = f"http://{args.host}:{args.port}"
    gateway_url = f"http://127.0.0.1:{args.gateway_port}"
    kept = local_secrets(var_dir)
    settings_env = {
        "DJANGO_DEBUG": "0",
        **{k: v for k, v in kept.items() if k in LOCAL_SECRETS},
        "DJANGO_REQUIRE_SECRET": "1",
        # Plain http on loopback: no HTTPS redirect / HSTS (put TLS in front and drop this in production).
        "DJANGO_HTTPS": os.environ.get("DJANGO_HTTPS", "0" if args.host in ("127.0.0.1", "localhost") else "1"),
        "PLATFORM_BASE_URL": os.environ.get("PLATFORM_BASE_URL", base),
        "SANDBOX_GATEWAY_URL": gateway_url,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        **({"CACHE_URL": os.environ["CACHE_URL"]} if os.environ.get("CACHE_URL") else {}),
        **(sandbox_sms_env(port=args.sms_port, secret=kept["SMS_SANDBOX_SECRET"]) if sandbox_sms else {}),
    }
    os.environ.update({**settings_env, "GUNICORN_BIND": os.environ.get("GUNICORN_BIND", f"{args.host}:{args.port}")})
    os.environ["PYTHONUNBUFFERED"] = "1"
    # `set -a; . var/serve.env; set +a` gives manage.py commands (merchant_create, createsuperuser) the same
    # database, keys and secrets as the running server.
    var_dir.mkdir(parents=True, exist_ok=True)
    env_file = var_dir / "serve.env"
    env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in settings_env.items()))
    env_file.chmod(0o600)
    if args.host not in ("127.0.0.1", "localhost") and "DJANGO_ALLOWED_HOSTS" not in os.environ:
        print(f"make serve: binding {args.host}; set DJANGO_ALLOWED_HOSTS to the names clients use", file=sys.stderr)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()  # production's refusals (settings) speak here, naming the variable
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    procs = Processes(env=dict(os.environ))
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        gateway_dir = Path(settings.SANDBOX_GATEWAY_DATA_DIR).resolve()
        procs.start("gateway", gateway_argv(port=args.gateway_port, data_dir=gateway_dir))
        if not wait_http(f"{gateway_url}/_control/health", timeout=30, proc=procs.items["gateway"].proc):
            refuse(f"the sandbox gateway did not come up on {gateway_url}")
        if sandbox_sms:
            procs.start("sms", sms_argv(port=args.sms_port))
            if not wait_http(f"http://127.0.0.1:{args.sms_port}/_sandbox/health", timeout=30):
                refuse(f"the sandbox SMS receiver did not come up on port {args.sms_port}")
        from operations.demo import seed_gateway_channels

        seed_gateway_channels()  # the sandbox gateway's channels, following its keys and address
        concurrency = int(os.environ.get("CELERY_WORKER_CONCURRENCY", "2"))
        for n in range(1, args.workers + 1):
            procs.start(f"worker{n}", worker_argv(node=f"worker{n}", concurrency=concurrency))
        procs.start("beat", beat_argv(schedule=var_dir / "celerybeat-schedule"))
        procs.start("web", web_argv())
        if not wait_http(f"{base}/healthz/ready", timeout=60, proc=procs.items["web"].proc):
            print("make serve: /healthz/ready did not answer 200 within 60 s; see the logs above", file=sys.stderr)
        sms_line = f"http://127.0.0.1:{args.sms_port}/_sandbox/inbox?phone=…" if sandbox_sms else "SMS_PROVIDER"
        print(
            f"\nProduction server running (gunicorn, {args.workers} Celery workers × {concurrency}, beat, "
            f"sandbox gateway; PostgreSQL, Redis, DEBUG off)\n"
            f"  Merchant site : {base}/\n"
            f"  Review admin  : {base}/admin/\n"
            f"  Partner API   : {base}/api/v1/   (Authorization: Bearer <API key>)\n"
            f"  Operations    : {base}/admin/ops/\n"
            f"  Monitoring    : {base}/metrics  {base}/healthz/ready\n"
            f"  Gateway       : {gateway_url}/_control/\n"
            f"  SMS phones    : {sms_line}\n"
            f"No demo data in production. With `set -a; . {env_file}; set +a`:\n"
            f"  .venv/bin/python manage.py merchant_create --name NAME --credit FEN --json   (prints an API key)\n"
            f"  .venv/bin/python manage.py createsuperuser\n"
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
