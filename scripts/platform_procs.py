"""The platform's processes, as production runs them: gunicorn serving config.wsgi, Celery workers, one Celery
beat and the sandbox gateway. `make serve` (scripts/serve.py) starts them and watches them; `make chaos`
(scripts/chaos.py) starts the same ones and kills and restarts them on purpose.

Each process runs in its own session (process group), so one ``killpg`` reaches a gunicorn master and its
workers, or a Celery worker and its prefork children, at once — as when the machine or container under them
dies. Plain standard library: this module is imported before Django is set up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


# --- what each process is -----------------------------------------------------------------------------------
def gateway_argv(*, port: int, data_dir: Path, host: str = "127.0.0.1") -> list[str]:
    return [
        PYTHON,
        "manage.py",
        "sandbox_gateway",
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--quiet",
    ]


def sms_argv(*, port: int) -> list[str]:
    """The sandbox SMS receiver (Alibaba Cloud SendSms protocol, an inbox per phone) on loopback."""
    return [PYTHON, "manage.py", "sandbox_sms", "--port", str(port), "--quiet"]


def sandbox_sms_env(*, port: int, secret: str) -> dict[str, str]:
    """Production (DJANGO_DEBUG=0) sends step-up codes through Alibaba Cloud SMS only; a run on this machine points
    it at the sandbox receiver (plain http is allowed on loopback). The receiver checks the same credentials."""
    return {
        "SMS_PROVIDER": "aliyun",
        "ALIYUN_SMS_ENDPOINT": f"http://127.0.0.1:{port}/",
        "ALIYUN_SMS_ACCESS_KEY_ID": "local-sandbox-sms",
        "ALIYUN_SMS_ACCESS_KEY_SECRET": secret,
        "ALIYUN_SMS_TEMPLATE_CODE": "SMS_LOCAL_0001",
    }


def web_argv() -> list[str]:
    """gunicorn with config/gunicorn.conf.py (bind, workers, timeouts and logs come from the environment)."""
    return [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"), "config.wsgi:application"]


def worker_argv(*, node: str, concurrency: int, loglevel: str = "INFO") -> list[str]:
    return [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-n",
        f"{node}@%h",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "-l",
        loglevel,
    ]


def beat_argv(*, schedule: Path, loglevel: str = "INFO") -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "config", "beat", "-s", str(schedule), "-l", loglevel]


# --- running them -------------------------------------------------------------------------------------------
@dataclass
class Managed:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log: IO[bytes] | None = None
    starts: int = 1
    history: list[tuple[float, str]] = field(default_factory=list)


class Processes:
    """Named child processes with their logs. Every process this starts is ended by ``stop_all``."""

    def __init__(self, *, env: dict[str, str], log_dir: Path | None = None) -> None:
        self.env = env
        self.log_dir = log_dir
        self.items: dict[str, Managed] = {}
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir is not None else None

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        path = self.log_path(name)
        log = path.open("ab") if path is not None else None
        if log is not None:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} start {' '.join(argv)}\n".encode())
            log.flush()
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log if log is not None else None,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=True,
        )
        previous = self.items.get(name)
        if previous is not None and previous.log is not None:
            previous.log.close()
        starts = previous.starts + 1 if previous is not None else 1
        history = previous.history if previous is not None else []
        history.append((time.time(), f"start pid {proc.pid}"))
        self.items[name] = Managed(name, argv, proc, log, starts, history)
        return proc

    def pid(self, name: str) -> int:
        return self.items[name].proc.pid

    def alive(self, name: str) -> bool:
        return name in self.items and self.items[name].proc.poll() is None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (parent and children) and reap the parent."""
        item = self.items[name]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(item.proc.pid, sig)
        item.history.append((time.time(), f"signal {sig} to group {item.proc.pid}"))
        if sig == signal.SIGKILL:
            with contextlib.suppress(subprocess.TimeoutExpired):
                item.proc.wait(timeout=10)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, self.items[name].argv)

    def exited(self) -> list[tuple[str, int]]:
        return [(n, m.proc.returncode) for n, m in self.items.items() if m.proc.poll() is not None]

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM every group (graceful: gunicorn and Celery finish what they do), then SIGKILL what is left."""
        for item in self.items.values():
            if item.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(item.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for item in self.items.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                item.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for item in self.items.values():
            # Children of a killed parent (prefork pool, gunicorn workers) are in the same group: end them too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(item.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                item.proc.wait(timeout=5)
            if item.log is not None:
                item.log.close()


# --- small helpers ------------------------------------------------------------------------------------------
def wait_http(url: str, *, timeout: float, ok: tuple[int, ...] = (200,), proc: subprocess.Popen | None = None) -> bool:
    """Poll ``url`` until it answers one of ``ok`` (False after ``timeout`` or when ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in ok:
                    return True
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def postgres_problem(database_url: str, *, create: bool = False) -> str | None:
    """None when the database answers (created first when ``create`` and missing); otherwise what is wrong."""
    import psycopg

    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        return f"DATABASE_URL={database_url!r} is not PostgreSQL"
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists and create:
                conn.execute(f'CREATE DATABASE "{name}"')
            elif not exists:
                return f"PostgreSQL database {name!r} does not exist"
    except psycopg.Error as exc:
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432} does not answer: {str(exc).strip()}"
    return None


def redis_problem(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer: {exc}"
    return None
