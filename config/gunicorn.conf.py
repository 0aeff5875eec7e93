"""gunicorn settings for ``config.wsgi`` — what `make serve`, `make chaos` and production run.

    gunicorn -c config/gunicorn.conf.py config.wsgi:application

Every value comes from the environment (a bad one stops start-up naming the variable); ``GUNICORN_CMD_ARGS``
still overrides anything here for a one-off change.

Sync workers: every request is a short PostgreSQL transaction (the partner API never calls a payment
channel: payouts run in Celery), so a process per request in flight is the simple, robust choice. The
default is the usual 2 × cores + 1, capped at 4 on a box with two cores or fewer — there the same machine
also runs PostgreSQL, two Celery workers, beat and the gateway — and at 12 elsewhere.
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r}: must be >= {minimum}")
    return value


_cores = multiprocessing.cpu_count()
_default_workers = min(2 * _cores + 1, 4 if _cores <= 2 else 12)

wsgi_app = "config.wsgi:application"
bind = [b.strip() for b in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", _default_workers, minimum=1), minimum=1)
worker_class = "sync"
# A request past this is killed and logged (a stuck query or lock wait), its worker replaced.
timeout = _int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20, minimum=1)
keepalive = _int("GUNICORN_KEEPALIVE", 5, minimum=0)
# Recycle workers now and then so a slow leak never grows unbounded; jitter keeps them from recycling together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000, minimum=0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200, minimum=0)
# Behind a TLS proxy on the same host: trust its X-Forwarded-Proto (https) only from there.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs to stdout / stderr ("-") for the process manager to collect; an access line per request with its time.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
proc_name = "kamen-web"

# gunicorn >= 25 opens a control socket for `gunicornc`, by default one path per user, which several instances
# on one box (make serve, make chaos, tests) would fight over. Off unless GUNICORN_CONTROL_SOCKET names a path;
# older gunicorn ignores both names.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket
