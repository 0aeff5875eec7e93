#!/usr/bin/env python3
"""`make chaos`: the platform's real processes under real faults, then the money invariants.

On loopback only: PostgreSQL (database kamen_chaos, dropped, created and migrated on every run), Redis (db 14,
flushed), the sandbox gateway, gunicorn serving config.wsgi, two Celery worker processes and Celery beat —
the processes `make serve` runs (scripts/platform_procs.py). Seeded merchants with history, KYC and balance
send a steady load of withdrawals through the partner API (API keys, Idempotency-Key, replays, cancels; each
merchant from its own loopback address, so risk sees distinct clients), while this injects:

- ``kill -9`` of a whole Celery worker (its prefork pool too) while payouts are in flight, then a restart;
- lost broker messages: the ``celery`` queue key deleted, or the Redis db flushed;
- ``kill -9`` of the sandbox gateway, restarted on the same data directory;
- dropped PostgreSQL connections (``pg_terminate_backend`` on every kamen_chaos backend);
- the gateway's scripted faults: timeouts (answer withheld), dropped requests, duplicate / late /
  out-of-order callbacks on every channel, and one slow, flapping channel (bank-direct: latency, maintenance
  toggled on and off, bursts of "system busy").

Then the faults stop and it waits (bounded) for every withdrawal to reach a final state, and checks:
``ledger_check``; nothing stuck, nothing lost; the gateway's own book holds at most one live payout per order
number across all channels, exactly one succeeded payout per paid withdrawal (one returned per reversed),
none for failed / rejected / cancelled ones, and each channel's clearing account equals what the gateway paid
on it (an unbooked payout shows here); Σ merchant balances + platform accounts = custody. It prints ONE
summary line (``CHAOS SUMMARY …``), then the offending withdrawals with their events, gateway rows and log
lines, writes var/chaos/report.txt, and exits 1 when an invariant failed (2 when it could not run).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import io
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_procs import (
    ROOT,
    Processes,
    beat_argv,
    free_port,
    gateway_argv,
    postgres_problem,
    redis_problem,
    sandbox_sms_env,
    sms_argv,
    wait_http,
    web_argv,
    worker_argv,
)

CARD_MIX = [  # sandbox card suffix -> share of withdrawals (channels.sandbox_rules: the suffix picks the fate)
    ("", 0.66),  # pays
    ("33", 0.05),  # accepted and paid, our call times out
    ("44", 0.04),  # paid after ~20 s
    ("55", 0.07),  # "system busy" twice, then paid
    ("66", 0.07),  # first request lost: query says not found, resubmitted under the same order number
    ("11", 0.04),  # invalid account: fails, hold released
    ("22", 0.03),  # frozen account: fails
    ("88", 0.04),  # paid, then returned by the bank: reversed
]
# No T+1: a T+1 withdrawal waits for the next working day's batch (T1_BATCH_TIME), after the run ends; its payout
# is the standard one, and the simulation (which moves the clock through batches) checks that it waits for it.
SPEEDS = [("standard", 0.85), ("instant", 0.15)]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴刚", "徐丽", "孙涛", "马超", "朱琳"]
LIVE_PAYOUT = {"succeeded", "returned", "processing", "awaiting_payee"}
CST = dt.timezone(dt.timedelta(hours=8))  # the platform's and the logs' local time (Asia/Shanghai)
FINAL = {"paid", "failed", "rejected", "cancelled", "reversed"}


def say(message: str) -> None:
    print(f"[chaos {dt.datetime.now(CST):%H:%M:%S}] {message}", flush=True)


def pick(rng: random.Random, table: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


# --- the run's environment ----------------------------------------------------------------------------------
@dataclass
class Config:
    seconds: float
    rate: float
    seed: int
    merchants: int
    settle_seconds: float
    workers: int
    concurrency: int
    db_name: str
    redis_db: int
    run_dir: Path
    web_port: int = 0
    gateway_port: int = 0
    sms_port: int = 0

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:5432/{self.db_name}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:6379/{self.redis_db}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


def child_env(cfg: Config, secret: str) -> dict[str, str]:
    """What every process of the run sees. Short sweeper and breaker timings so recovery happens within a run."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secret,
        "DJANGO_REQUIRE_SECRET": "1",
        "DJANGO_HTTPS": "0",  # plain http on loopback
        **(sandbox_sms_env(port=cfg.sms_port, secret=secrets.token_urlsafe(24)) if cfg.sms_port else {}),
        "FIELD_ENCRYPTION_KEYS": base64.b64encode(os.urandom(32)).decode(),
        "FIELD_HASH_KEY": base64.b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": cfg.database_url,
        "CELERY_BROKER_URL": cfg.redis_url,
        "CACHE_URL": cfg.redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "APP_VAR_DIR": str(cfg.run_dir / "var"),
        "SANDBOX_GATEWAY_URL": cfg.gateway,
        "SANDBOX_GATEWAY_DATA_DIR": str(cfg.run_dir / "gateway"),
        "PLATFORM_BASE_URL": cfg.base,
        "GUNICORN_BIND": f"127.0.0.1:{cfg.web_port}",
        "GUNICORN_WORKERS": os.environ.get("CHAOS_WEB_WORKERS", "2"),
        # A sweeper that fires often and re-enqueues after 3 s sends duplicate tasks while the first is still
        # talking to the slow channel: the at-least-once delivery every task must tolerate, made frequent.
        "SWEEP_INTERVAL_SECONDS": os.environ.get("SWEEP_INTERVAL_SECONDS", "3"),
        "WITHDRAWAL_REENQUEUE_AFTER_SECONDS": os.environ.get("WITHDRAWAL_REENQUEUE_AFTER_SECONDS", "3"),
        "WITHDRAWAL_STUCK_AFTER_SECONDS": os.environ.get("WITHDRAWAL_STUCK_AFTER_SECONDS", "120"),
        "CHANNEL_BREAKER_COOLDOWN_SECONDS": os.environ.get("CHANNEL_BREAKER_COOLDOWN_SECONDS", "10"),
        # At the default 5 % the injected fault rates (and every gateway restart) keep both breakers open and
        # most payouts wait for "no channel" retries; at 50 % Alipay stays usable and bank-direct (about a third
        # of its calls fail) still takes traffic, its breaker opening in the maintenance and busy bursts.
        "CHANNEL_BREAKER_FAILURE_RATE_BP": os.environ.get("CHANNEL_BREAKER_FAILURE_RATE_BP", "5000"),
        # Payouts from 2,000 yuan go bank-direct first (the "large amounts → bank-direct" policy, default 50,000
        # yuan): without it routing learns to avoid the sick channel and the flapping one sees almost no traffic.
        "ROUTING_LARGE_AMOUNT_FEN": os.environ.get("ROUTING_LARGE_AMOUNT_FEN", "200000"),
        "CHANNEL_CALL_TIMEOUT_SECONDS": os.environ.get("CHANNEL_CALL_TIMEOUT_SECONDS", "6"),
        "API_RATE_LIMIT": "6000/min",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


# --- shared state of the run ---------------------------------------------------------------------------------
@dataclass
class Merchant:
    index: int
    pk: int
    api_key: str
    ip: str
    device: str
    phone: str
    accounts: dict[str, int]  # card suffix -> payout account id


@dataclass
class Submission:
    n: int
    merchant: int
    key: str
    body: dict[str, Any]
    replay: bool
    cancel: bool
    status: int = 0
    code: str = ""
    withdrawal_id: int | None = None
    tries: int = 0
    notes: list[str] = field(default_factory=list)


class Run:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        self.fault_log: list[str] = []
        self.submissions: list[Submission] = []
        self.human: Counter[str] = Counter()
        self.problems: list[str] = []
        self.started = time.monotonic()
        self.humans_done = threading.Event()
        self.merchants: list[Merchant] = []

    def fault(self, kind: str, detail: str = "", count: int = 1) -> None:
        with self.lock:
            self.faults[kind] += count
            at = f"{dt.datetime.now(CST):%H:%M:%S} +{time.monotonic() - self.started:6.1f}s"
            line = f"{at} {kind} {detail}".rstrip()
            self.fault_log.append(line)
        say(f"fault {kind} {detail}".rstrip())


def db_retry(fn: Any, tries: int = 4) -> Any:
    """Run a database read/write from this process; a dropped connection (our own fault) is reopened."""
    from django.db import InterfaceError, OperationalError, connection

    for attempt in range(tries):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == tries - 1:
                raise
            time.sleep(0.5)
    return None


# --- gateway control API -------------------------------------------------------------------------------------
def control(cfg: Config, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
    import requests

    r = requests.request(method, f"{cfg.gateway}/_control{path}", json=body, timeout=timeout)
    r.raise_for_status()
    return r.json()


def control_quiet(cfg: Config, method: str, path: str, body: Any = None) -> Any:
    import requests

    try:
        return control(cfg, method, path, body, timeout=5)
    except requests.RequestException:
        return None  # the gateway is down (restart in progress): the next flap tries again


BASE_SCRIPTS: dict[str, dict[str, Any]] = {
    # The slow, flapping channel: long latency, timeouts, lost requests, busy bursts and maintenance flaps.
    "bankdirect": {
        "latency_ms": 500,
        "latency_jitter_ms": 1500,
        "timeout_rate": 0.08,
        "drop_rate": 0.15,
        "hang_seconds": 2.0,
        "callback_duplicate_rate": 0.25,
        "callback_late_rate": 0.15,
        "callback_late_seconds": 4.0,
        "callback_out_of_order_rate": 0.10,
    },
    "alipay": {
        "latency_ms": 50,
        "latency_jitter_ms": 250,
        "timeout_rate": 0.03,
        "drop_rate": 0.02,
        "hang_seconds": 2.0,
        "callback_duplicate_rate": 0.25,
        "callback_late_rate": 0.10,
        "callback_late_seconds": 4.0,
        "callback_out_of_order_rate": 0.10,
    },
    "wechat": {"auto_confirm": True, "timeout_rate": 0.05, "callback_duplicate_rate": 0.2},
}


# --- setup ---------------------------------------------------------------------------------------------------
def fresh_database(cfg: Config) -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=5) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{cfg.db_name}"')


def id_number(i: int) -> str:
    from stdnum.cn import ric

    born = dt.date(1970, 1, 1) + dt.timedelta(days=331 * i + 17)
    body = f"110101{born:%Y%m%d}{100 + i % 900:03d}"
    return body + ric.calc_check_digit(body + "0")


def seed(cfg: Config, rng: random.Random) -> tuple[list[Merchant], list[Any]]:
    """Merchants that look established to risk (registered, verified and selling for months, each on its own
    address and device), two reviewers, the gateway's channels and a policy without a daily count cap."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import roles_sync
    from accounts.services import api_key_create, kyc_verify, merchant_register, payout_account_add
    from channels.models import Channel
    from channels.sandbox_rules import make_card_number
    from operations.demo import seed_gateway_channels
    from wallets.services import merchant_sale_settle
    from withdrawals.fees import policy_current
    from withdrawals.models import WithdrawalPolicy

    roles_sync()
    policy_current()
    # A load test sends more than 20 withdrawals per merchant a day; amounts and every other limit stay.
    WithdrawalPolicy.objects.filter(active=True).update(daily_count_limit=100_000)
    seed_gateway_channels()
    # Only the gateway's channels: its book is the one the invariants read (the in-process sandbox has none).
    Channel.objects.exclude(code__in=list(BASE_SCRIPTS)).update(enabled=False)
    reviewers = []
    for name in ("chaos_reviewer1", "chaos_reviewer2"):
        user = User.objects.create_user(username=name, password=None, is_staff=True)
        user.groups.add(Group.objects.get(name="reviewer"))
        reviewers.append(User.objects.get(pk=user.pk))
    now = timezone.now()
    merchants = []
    for i in range(cfg.merchants):
        start = now - dt.timedelta(days=200 + i)
        ip, device = f"127.0.{10 + i}.{20 + i % 200}", f"chaos-device-{cfg.seed}-{i}"
        phone = f"139{i:04d}{1234 + i % 5000:04d}"  # never ending 0000 (the sandbox KYC's "someone else's")
        name = NAMES[i % len(NAMES)]
        reg = merchant_register(
            name=f"混沌商户{i}",
            real_name=name,
            id_number=id_number(i),
            phone=phone,
            ip=ip,
            device=device,
            now=start,
        )
        m = reg.merchant
        kyc_verify(merchant=m, now=start)
        accounts: dict[str, int] = {}
        for suffix, _share in CARD_MIX:
            account = payout_account_add(
                merchant=m,
                account_number=make_card_number(suffix, seed=cfg.seed * 100_000 + m.pk * 100 + len(accounts)),
                holder_name=name,
                bank_code="ICBC",
                ip=ip,
                device=device,
                now=start,
            )
            accounts[suffix] = account.pk
        for day in range(1, 181, 7):
            merchant_sale_settle(
                merchant_id=m.pk,
                order_ref=f"chaos-{m.pk}-{day}",
                amount=rng.randrange(1_000_000, 5_000_000),
                buyer=f"buyer-{rng.randrange(10_000)}",
                now=start + dt.timedelta(days=day),
            )
        m.kyc.refresh_from_db()
        if m.kyc.level < 2:  # a seeding mistake would show up as limit_exceeded answers, not as a finding
            raise RuntimeError(f"chaos merchant {m.pk} reached KYC level {m.kyc.level}, not 2")
        key = api_key_create(merchant=m, label="chaos")
        merchants.append(Merchant(i, m.pk, key, ip, device, phone, accounts))
    return merchants, reviewers


# --- load ----------------------------------------------------------------------------------------------------
def session_for(ip: str) -> Any:
    """A requests session whose connections leave from ``ip`` (any 127.x.y.z is loopback on Linux)."""
    import requests
    from requests.adapters import HTTPAdapter

    class SourceAddress(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["source_address"] = (ip, 0)
            super().init_poolmanager(*args, **kwargs)

    s = requests.Session()
    s.mount("http://", SourceAddress(pool_maxsize=8))
    return s


def plan(cfg: Config, merchants: list[Merchant], rng: random.Random) -> list[tuple[float, Submission]]:
    items: list[tuple[float, Submission]] = []
    t, n = 0.0, 0
    while True:
        t += rng.expovariate(cfg.rate)
        if t >= cfg.seconds:
            return items
        m = merchants[rng.randrange(len(merchants))]
        amount = int(math.exp(rng.uniform(math.log(20_000), math.log(800_000))))
        body = {
            "amount": amount,
            "payout_account": m.accounts[pick(rng, CARD_MIX)],
            "speed": pick(rng, SPEEDS),
            "device": m.device,
        }
        sub = Submission(n, m.index, f"chaos-{cfg.seed}-{n}", body, rng.random() < 0.05, rng.random() < 0.03)
        items.append((t, sub))
        n += 1


def send(run: Run, merchants: list[Merchant], sessions: list[Any], sub: Submission) -> None:
    import requests

    m, s = merchants[sub.merchant], sessions[sub.merchant]
    headers = {"Authorization": f"Bearer {m.api_key}", "Idempotency-Key": sub.key}
    url = f"{run.cfg.base}/api/v1/withdrawals"

    def post() -> requests.Response | None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sub.tries < 8:
            sub.tries += 1
            try:
                r = s.post(url, json=sub.body, headers=headers, timeout=20)
            except requests.RequestException as exc:
                sub.notes.append(f"try {sub.tries}: {type(exc).__name__}")
                time.sleep(0.5 * sub.tries)
                continue
            if r.status_code >= 500 or r.status_code == 429:
                sub.notes.append(f"try {sub.tries}: HTTP {r.status_code}")
                time.sleep(0.5 * sub.tries)
                continue
            return r
        return None

    r = post()
    if r is None:
        sub.code = "no_answer"
        return
    sub.status = r.status_code
    if r.status_code in (200, 201):
        sub.withdrawal_id = r.json()["id"]
    else:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            sub.code = r.json()["error"]["code"]
        return
    if sub.replay:
        again = post()
        if again is None or again.status_code != 200 or again.json().get("id") != sub.withdrawal_id:
            answer = "no answer" if again is None else f"{again.status_code} {again.text[:200]}"
            with run.lock:
                run.problems.append(f"idempotency: key {sub.key} replay answered {answer}, first {sub.withdrawal_id}")
    if sub.cancel:
        with contextlib.suppress(requests.RequestException):
            c = s.post(f"{run.cfg.base}/api/v1/withdrawals/{sub.withdrawal_id}/cancel", headers=headers, timeout=20)
            sub.notes.append(f"cancel: {c.status_code}")


def load(run: Run, merchants: list[Merchant], items: list[tuple[float, Submission]]) -> None:
    sessions = [session_for(m.ip) for m in merchants]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=12, thread_name_prefix="chaos-api") as pool:
        for at, sub in items:
            delay = start + at - time.monotonic()
            if delay > 0 and run.stop.wait(delay):
                break
            with run.lock:
                run.submissions.append(sub)
            pool.submit(send, run, merchants, sessions, sub)


# --- people: reviewers approve what risk sent to review, merchants enter their SMS code ------------------------
def people(run: Run, merchants: list[Merchant], reviewers: list[Any], until: threading.Event) -> None:
    import requests
    from django.db import connection

    from config.errors import DomainError
    from withdrawals.models import Status, Withdrawal
    from withdrawals.services import withdrawal_approve, withdrawal_verify

    phones = {m.pk: m.phone for m in merchants}

    def sms_code(merchant_id: int) -> str:
        """The newest code on the merchant's phone: the sandbox SMS receiver's inbox plays the phone."""
        inbox = f"http://127.0.0.1:{run.cfg.sms_port}/_sandbox/inbox"
        try:
            rows = requests.get(inbox, params={"phone": phones.get(merchant_id, "")}, timeout=5).json()["messages"]
        except (requests.RequestException, ValueError, KeyError):
            return ""
        found = re.search(r"(?<!\d)(\d{6})(?!\d)", rows[0]["text"]) if rows else None
        return found.group(1) if found else ""

    def once() -> None:
        for w in Withdrawal.objects.filter(status=Status.PENDING_REVIEW).order_by("pk")[:50]:
            for reviewer in reviewers:
                try:
                    withdrawal_approve(withdrawal_id=w.pk, reviewer=reviewer, note="chaos: approved")
                    run.human["approvals"] += 1
                except DomainError:
                    pass
        for w in Withdrawal.objects.filter(status=Status.AWAITING_VERIFICATION).order_by("pk")[:50]:
            code = sms_code(w.merchant_id)
            if code:
                try:
                    withdrawal_verify(withdrawal_id=w.pk, merchant_id=w.merchant_id, code=code)
                    run.human["sms_verified"] += 1
                except DomainError:
                    run.human["sms_refused"] += 1

    try:
        while not until.wait(2.0):
            with contextlib.suppress(Exception):
                db_retry(once)
    finally:
        connection.close()


# --- faults --------------------------------------------------------------------------------------------------
def schedule(cfg: Config, rng: random.Random) -> list[tuple[float, str]]:
    """Process faults spread over the run: each kind at least once, more often in a longer run."""
    periods = {"worker_kill": 45.0, "broker_loss": 55.0, "gateway_restart": 65.0, "pg_terminate": 30.0}
    offsets = {"worker_kill": 0.22, "broker_loss": 0.38, "gateway_restart": 0.52, "pg_terminate": 0.3}
    events = []
    for kind, period in periods.items():
        count = max(1, int(cfg.seconds // period))
        step = cfg.seconds * 0.8 / count
        for k in range(count):
            at = cfg.seconds * 0.1 + step * k + step * offsets[kind] + rng.uniform(-0.1, 0.1) * step
            events.append((min(max(at, 1.0), cfg.seconds * 0.92), kind))
    return sorted(events)


def processing_now() -> int:
    from withdrawals.models import Status, Withdrawal

    return Withdrawal.objects.filter(status__in=[Status.PROCESSING, Status.OUTCOME_UNKNOWN]).count()


def inject(run: Run, procs: Processes, kind: str, rng: random.Random, flushes: list[int]) -> None:
    cfg = run.cfg
    if kind == "worker_kill":
        name = f"worker{rng.randrange(cfg.workers) + 1}"
        deadline, in_flight = time.monotonic() + 6, 0
        while time.monotonic() < deadline and not run.stop.is_set():  # in the middle of payouts
            in_flight = db_retry(processing_now)
            if in_flight:
                break
            time.sleep(0.2)
        procs.kill(name)
        run.fault("worker_kill", f"{name} (kill -9, whole pool) with {in_flight} payouts in flight")
        time.sleep(rng.uniform(1.0, 4.0))
        procs.restart(name)
    elif kind == "broker_loss":
        import redis

        r = redis.Redis.from_url(cfg.redis_url)
        flushes[0] += 1
        if flushes[0] % 2:
            lost = r.llen("celery")
            r.delete("celery")
            run.fault("broker_queue_deleted", f"DEL celery ({lost} messages lost)")
        else:
            lost = r.dbsize()
            r.flushdb()
            run.fault("broker_flushdb", f"FLUSHDB on db {cfg.redis_db} ({lost} keys)")
    elif kind == "gateway_restart":
        procs.kill("gateway")
        run.fault("gateway_restart", "kill -9, restarted on the same data dir")
        time.sleep(rng.uniform(0.5, 2.0))
        procs.restart("gateway")
        wait_http(f"{cfg.gateway}/_control/health", timeout=20)
    elif kind == "pg_terminate":
        import psycopg

        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            rows = c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [cfg.db_name],
            ).fetchall()
        run.fault("pg_terminate", f"{len(rows)} backends of {cfg.db_name} terminated")


def faults(run: Run, procs: Processes, rng: random.Random) -> None:
    from django.db import connection

    flushes = [0]
    events = schedule(run.cfg, rng)
    start = time.monotonic()
    try:
        for at, kind in events:
            if run.stop.wait(max(0.0, start + at - time.monotonic())):
                return
            try:
                inject(run, procs, kind, rng, flushes)
            except Exception as exc:  # a fault that could not be injected is reported, never fatal
                run.fault(f"{kind}_failed", repr(exc)[:200])
    finally:
        connection.close()


def flapper(run: Run, rng: random.Random) -> None:
    """The slow, flapping channel: maintenance switched on and off, bursts of "system busy" in between, and
    now and then Alipay answering "system error" (outcome unknown). The only writer of scripts while running."""
    cfg = run.cfg
    while not run.stop.is_set():
        if run.stop.wait(rng.uniform(2.0, 7.0)):
            return
        if rng.random() < 0.5:
            if control_quiet(cfg, "POST", "/channels/bankdirect/script", {"maintenance": True}) is not None:
                with run.lock:
                    run.faults["maintenance_flap"] += 1
            run.stop.wait(rng.uniform(1.0, 4.0))
            control_quiet(cfg, "POST", "/channels/bankdirect/script", {"maintenance": False})
        else:
            n = rng.randint(2, 5)
            if control_quiet(cfg, "POST", "/channels/bankdirect/script", {"force_codes": ["SYSTEM_BUSY"] * n}):
                with run.lock:
                    run.faults["busy_codes"] += n
            if rng.random() < 0.3 and control_quiet(
                cfg, "POST", "/channels/alipay/script", {"force_codes": ["SYSTEM_ERROR"]}
            ):
                with run.lock:
                    run.faults["alipay_system_error"] += 1


def calm(cfg: Config) -> None:
    """Every script back to a healthy channel (and maintenance off) for the settling phase."""
    for channel in BASE_SCRIPTS:
        for _ in range(10):
            if control_quiet(cfg, "PUT", f"/channels/{channel}/script", {}) is not None:
                break
            time.sleep(1)


# --- settling and checking -----------------------------------------------------------------------------------
def open_withdrawals() -> list[Any]:
    from withdrawals.models import FINAL_STATES, Withdrawal

    return list(Withdrawal.objects.exclude(status__in=FINAL_STATES).order_by("pk"))


def settle(run: Run, procs: Processes) -> float:
    cfg = run.cfg
    start = time.monotonic()
    deadline = start + cfg.settle_seconds
    last = -1
    while time.monotonic() < deadline:
        for name, code in procs.exited():  # a process that died on its own comes back for the settling phase
            say(f"{name} had exited ({code}); restarting it to settle")
            procs.restart(name)
        left = db_retry(open_withdrawals)
        if not left:
            return time.monotonic() - start
        if len(left) != last:
            states = Counter(w.status for w in left)
            say(f"settling: {len(left)} not final ({dict(states)})")
            last = len(left)
        time.sleep(2)
    return time.monotonic() - start


@dataclass
class Verdict:
    line: str
    failed: bool
    offenders: dict[int, list[str]]
    report: list[str]


def check(run: Run, settle_took: float) -> Verdict:
    from django.core.management import CommandError, call_command
    from django.db.models import Sum
    from django.utils import timezone

    from wallets.models import LedgerAccount
    from withdrawals.models import FINAL_STATES, Withdrawal, WithdrawalEvent

    cfg = run.cfg
    report: list[str] = []
    offenders: dict[int, list[str]] = defaultdict(list)

    err = io.StringIO()
    try:
        call_command("ledger_check", stdout=io.StringIO(), stderr=err)
        ledger_ok = True
    except CommandError as exc:
        ledger_ok = False
        report.append(f"ledger_check: {exc}\n{err.getvalue()}")

    withdrawals = {w.pk: w for w in Withdrawal.objects.select_related("payout_account").order_by("pk")}
    by_order = {w.order_no: w for w in withdrawals.values()}
    now = timezone.now()
    stuck = [w for w in withdrawals.values() if w.status not in FINAL_STATES]
    for w in stuck:
        age = (now - w.state_changed_at).total_seconds()
        nxt = f"; next action in {(w.next_action_at - now).total_seconds():.0f}s" if w.next_action_at else ""
        offenders[w.pk].append(f"stuck in {w.status} for {age:.0f}s (created {(now - w.created_at).seconds}s ago{nxt})")

    acknowledged = {s.withdrawal_id for s in run.submissions if s.withdrawal_id}
    lost = sorted(acknowledged - set(withdrawals))
    for wid in lost:
        report.append(f"lost: withdrawal {wid} was acknowledged by the API but is not in the database")

    book = control(cfg, "GET", "/payouts")["payouts"]
    rows_by_order: dict[str, list[dict]] = defaultdict(list)
    for row in book:
        rows_by_order[row["order_no"]].append(row)
    orphans = sorted(set(rows_by_order) - set(by_order))
    for order_no in orphans:
        report.append(f"orphan: the gateway holds {order_no} that no withdrawal has: {rows_by_order[order_no]}")

    # The platform's own safety net for answers that never arrived: the daily statement reconciliation, run now
    # for today as the next morning's job would. Its differences are shown beside each offender.
    from channels.models import StatementDifference
    from withdrawals.reconciliation import reconcile_channels

    today = timezone.localdate()
    reconcile_channels(date=today)
    differences: dict[str, list[str]] = defaultdict(list)
    for diff in StatementDifference.objects.filter(statement__date=today):
        differences[diff.order_no].append(
            f"{diff.channel_code} {diff.kind} ours={diff.our_status} theirs={diff.their_status}"
        )

    double_paid, book_bad, payouts_per_paid, return_unseen = [], 0, [], 0
    for w in withdrawals.values():
        rows = rows_by_order.get(w.order_no, [])
        live = [r for r in rows if r["status"] in LIVE_PAYOUT]
        paid_rows = [r for r in rows if r["status"] in ("succeeded", "returned")]
        desc = ", ".join(f"{r['channel']}:{r['status']}" for r in rows) or "none"
        if len(paid_rows) > 1:
            double_paid.append(w)
            offenders[w.pk].append(f"DOUBLE-PAID: {len(paid_rows)} paid payouts at the gateway ({desc})")
        elif len(live) > 1:
            offenders[w.pk].append(f"{len(live)} live payouts at the gateway ({desc})")
        if w.status == "paid":
            succeeded = [r for r in rows if r["status"] == "succeeded"]
            payouts_per_paid.append(len(succeeded))
            if len(succeeded) != 1 or len(live) != 1:
                book_bad += 1
                offenders[w.pk].append(f"paid but the gateway has {desc}")
                if [r["status"] for r in live] == ["returned"]:
                    return_unseen += 1  # the bank return's callback never reached us
            elif succeeded[0]["channel"] != w.channel_code or succeeded[0]["amount"] != w.net_amount:
                book_bad += 1
                offenders[w.pk].append(f"paid on {w.channel_code} {w.net_amount} but the gateway paid {succeeded[0]}")
        elif w.status == "reversed":
            if len([r for r in rows if r["status"] == "returned"]) != 1 or len(live) != 1:
                book_bad += 1
                offenders[w.pk].append(f"reversed but the gateway has {desc}")
        elif w.status in ("failed", "rejected", "cancelled") and live:
            book_bad += 1
            offenders[w.pk].append(f"{w.status} but the gateway has {desc}")

    # Each channel's clearing account holds what we booked as paid through it; the gateway knows what it paid.
    clearing = {
        a.scope.split(":", 1)[1]: a.balance
        for a in LedgerAccount.objects.filter(kind=LedgerAccount.Kind.CHANNEL_CLEARING)
    }
    paid_at_gateway: Counter[str] = Counter()
    for row in book:
        if row["status"] == "succeeded":
            paid_at_gateway[row["channel"]] += row["amount"]
    unbooked = {c: paid_at_gateway[c] - clearing.get(c, 0) for c in set(paid_at_gateway) | set(clearing)}
    unbooked = {c: v for c, v in unbooked.items() if v}
    for c in unbooked:
        report.append(
            f"clearing: channel {c} paid {paid_at_gateway[c]} fen at the gateway, booked {clearing.get(c, 0)} fen"
        )

    balances = dict(LedgerAccount.objects.values("kind").annotate(total=Sum("balance")).values_list("kind", "total"))
    K = LedgerAccount.Kind
    merchant_total = sum(balances.get(k, 0) or 0 for k in LedgerAccount.MERCHANT_KINDS)
    platform_total = (balances.get(K.PLATFORM_FEE_REVENUE) or 0) + (balances.get(K.CHANNEL_CLEARING) or 0)
    platform_total -= balances.get(K.SUSPENSE) or 0
    custody = balances.get(K.CUSTODY) or 0
    custody_ok = merchant_total + platform_total == custody
    if not custody_ok:
        report.append(f"custody: merchants {merchant_total} + platform {platform_total} != custody {custody}")
    held = balances.get(K.MERCHANT_HELD) or 0
    if not stuck and held:
        report.append(f"held: {held} fen still held with every withdrawal final")

    for wid in offenders:
        for d in differences.get(withdrawals[wid].order_no, []):
            offenders[wid].append(f"statement reconciliation difference: {d}")

    ignored = WithdrawalEvent.objects.filter(reason__startswith="忽略通道").values_list("withdrawal_id", flat=True)
    for wid in sorted(set(ignored)):
        if wid in offenders:
            offenders[wid].append("an answer from a channel it had left was ignored")

    states = Counter(w.status for w in withdrawals.values())
    api = Counter(
        "created" if s.status == 201 else "replayed" if s.status == 200 else s.code or f"http_{s.status}"
        for s in run.submissions
    )
    callbacks = control(cfg, "GET", "/callbacks")["callbacks"]
    cb_faults = Counter(f"callback_{f}" for c in callbacks if c["fault"] for f in c["fault"].split("+"))
    unknown = WithdrawalEvent.objects.filter(to_status="outcome_unknown").count()
    reroutes = WithdrawalEvent.objects.filter(to_status="approved", from_status__in=["processing", "outcome_unknown"])
    faults = Counter(run.faults) + cb_faults
    faults["outcome_unknown_events"] = unknown
    faults["reroutes"] = reroutes.count()
    leaks = pii_in_logs(cfg, run.merchants)
    report.extend(leaks)
    failed = bool(
        leaks
        or not ledger_ok
        or not custody_ok
        or stuck
        or lost
        or double_paid
        or book_bad
        or unbooked
        or orphans
        or run.problems
        or (held and not stuck)
    )
    ppp = f"{min(payouts_per_paid)}/{max(payouts_per_paid)}" if payouts_per_paid else "-/-"
    line = (
        f"CHAOS SUMMARY seed={cfg.seed} seconds={cfg.seconds:g} rate={cfg.rate:g}/s merchants={cfg.merchants}"
        f" | withdrawals={len(withdrawals)} api={_fmt(api)}"
        f" | faults: {_fmt(faults)}"
        f" | people: {_fmt(run.human)} | final: {_fmt(states)}"
        f" | payouts/paid min/max={ppp} | lost={len(lost)} stuck={len(stuck)} double_paid={len(double_paid)}"
        f" book_mismatch={book_bad} return_unseen={return_unseen} unbooked_fen={sum(unbooked.values())}"
        f" orphans={len(orphans)} statement_differences={sum(len(v) for v in differences.values())}"
        f" pii_in_logs={len(leaks)}"
        f" | ledger={'ok' if ledger_ok else 'BROKEN'} custody={'ok' if custody_ok else 'BROKEN'}"
        f" | settled_in={settle_took:.0f}s | {'FAIL' if failed else 'PASS'}"
    )
    report.extend(run.problems)
    # Evidence for later: every event and the gateway's whole book (the database is dropped by the next run).
    with (cfg.run_dir / "events.jsonl").open("w") as out:
        for e in WithdrawalEvent.objects.order_by("withdrawal_id", "created_at", "pk"):
            row = {
                "withdrawal": e.withdrawal_id,
                "order_no": withdrawals[e.withdrawal_id].order_no,
                "at": e.created_at.astimezone(CST).isoformat(timespec="milliseconds"),
                "actor": e.actor_label,
                "from": e.from_status,
                "to": e.to_status,
                "reason": e.reason,
                "data": e.data,
            }
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    (cfg.run_dir / "gateway-book.json").write_text(json.dumps(book, indent=1))
    return Verdict(line, failed, offenders, report)


# The platform's own processes; the gateway (the banks) and the SMS receiver (the phones) hold the numbers by role.
PLATFORM_LOGS = ("web", "worker*", "beat")


def pii_in_logs(cfg: Config, merchants: list[Merchant]) -> list[str]:
    """Every full ID, phone or payout account number of the seeded merchants that appears in the logs of the
    platform's processes (the web server's access log, the workers, beat): each process masks its log records."""
    from accounts.models import KycRecord, PayoutAccount

    pks = [m.pk for m in merchants]
    numbers = {m.phone: "phone" for m in merchants}
    for kyc in KycRecord.objects.filter(merchant_id__in=pks):
        numbers[kyc.id_number] = "ID number"
        numbers[kyc.phone] = "phone"
    for account in PayoutAccount.objects.filter(merchant_id__in=pks):
        numbers[account.account_number] = f"{account.kind} number"
    numbers.pop("", None)
    if not numbers:
        return []
    any_number = re.compile("|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True)))
    found = []
    for pattern in PLATFORM_LOGS:
        for log in sorted((cfg.run_dir / "logs").glob(f"{pattern}.log")):
            with log.open(errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    if hit := any_number.search(line):
                        found.append(f"full {numbers[hit.group(0)]} in {log.name} line {n}: {line.strip()[:160]}")
    return found


def _fmt(counter: Counter[str] | dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(counter.items()) if v) or "none"


def explain(cfg: Config, wid: int, reasons: list[str], logs: Path) -> list[str]:
    """One offending withdrawal: what is wrong, its events, the gateway's rows and callbacks, log lines."""
    from withdrawals.models import Withdrawal

    w = Withdrawal.objects.get(pk=wid)
    out = [
        f"withdrawal {w.pk} order {w.order_no} status={w.status} channel={w.channel_code or '-'} amount={w.amount}"
        f" net={w.net_amount} attempts={w.attempts} card=…{w.payout_account.account_number[-4:]}",
        *[f"  ! {r}" for r in reasons],
        "  events (withdrawals_withdrawalevent):",
    ]
    for e in w.events.order_by("created_at", "pk"):
        data = json.dumps(e.data, ensure_ascii=False, sort_keys=True)[:220] if e.data else ""
        out.append(
            f"    {e.created_at.astimezone(CST):%H:%M:%S.%f}"[:-3]
            + f" [{e.actor_label}] {e.from_status or '-'} → {e.to_status or '='}: {e.reason} {data}".rstrip()
        )
    with contextlib.suppress(Exception):
        for row in control(cfg, "GET", f"/payouts?order_no={w.order_no}")["payouts"]:
            out.append(
                f"  gateway payout: {row['channel']} {row['status']} {row['provider_code']} amount={row['amount']}"
                f" submissions={row['submissions']} ref={row['reference']}"
                f" created={dt.datetime.fromtimestamp(row['created_at'], CST):%H:%M:%S.%f}"[:-3]
            )
        for cb in control(cfg, "GET", f"/callbacks?order_no={w.order_no}")["callbacks"]:
            out.append(
                f"  gateway callback: {cb['channel']} {cb['status']} fault={cb['fault'] or '-'}"
                f" deliveries={cb['deliveries']}"
            )
    needles = (w.order_no, f"withdrawal {w.pk} ", f"[{w.pk}]", f"({w.pk},)")
    for log in sorted(logs.glob("*.log")):
        with log.open(errors="replace") as fh:
            hits = [line.rstrip() for line in fh if any(n in line for n in needles)]
        for line in hits[:8]:
            out.append(f"  {log.name}: {line[:240]}")
    return out


# --- the run -------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180, help="length of the load and fault phase")
    parser.add_argument("--rate", type=float, default=1.5, help="withdrawal submissions per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--merchants", type=int, default=12)
    parser.add_argument("--settle-seconds", type=float, default=300, help="longest wait for everything to settle")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork pool size of each worker")
    parser.add_argument("--db-name", default="kamen_chaos")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--run-dir", default=str(ROOT / "var" / "chaos"), help="logs, gateway data, report (wiped)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # this tree's apps, whatever the virtualenv was installed from
    if args.seconds <= 0 or args.rate <= 0 or args.merchants < 1 or args.workers < 1:
        parser.error("--seconds, --rate, --merchants and --workers must be positive")
    cfg = Config(
        args.seconds,
        args.rate,
        args.seed,
        args.merchants,
        args.settle_seconds,
        args.workers,
        args.concurrency,
        args.db_name,
        args.redis_db,
        Path(args.run_dir).resolve(),
    )

    problem = postgres_problem("postgres://postgres@127.0.0.1:5432/postgres") or redis_problem(cfg.redis_url)
    if problem:
        print(f"make chaos: {problem}\n  start them with `make services`", file=sys.stderr)
        return 2
    cfg.web_port, cfg.gateway_port = free_port(), free_port()
    # Production sends step-up codes by SMS only; the sandbox receiver plays the phones (older trees lack it).
    cfg.sms_port = free_port() if (ROOT / "risk" / "management" / "commands" / "sandbox_sms.py").exists() else 0
    marker = cfg.run_dir / ".chaos-run"
    if cfg.run_dir.exists() and any(cfg.run_dir.iterdir()) and not marker.exists():
        print(f"make chaos: {cfg.run_dir} is not empty and not an earlier chaos run's; not wiping it", file=sys.stderr)
        return 2
    shutil.rmtree(cfg.run_dir, ignore_errors=True)
    (cfg.run_dir / "logs").mkdir(parents=True)
    marker.touch()
    env = child_env(cfg, secret=secrets.token_urlsafe(50))
    os.environ.update({k: v for k, v in env.items() if k != "LOG_LEVEL"})
    os.environ["LOG_LEVEL"] = "WARNING"  # this process's own service calls stay quiet; the children log INFO
    procs = Processes(env=env, log_dir=cfg.run_dir / "logs")
    run = Run(cfg)

    # Every loop below is bounded; this is the last resort if something hangs anyway.
    hard_limit = 240 + cfg.seconds + cfg.settle_seconds + 180

    def watchdog() -> None:
        say(f"hard time limit of {hard_limit:.0f}s reached: stopping everything")
        procs.stop_all(timeout=5)
        os._exit(3)

    timer = threading.Timer(hard_limit, watchdog)
    timer.daemon = True
    timer.start()

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return execute(run, procs)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        run.stop.set()
        run.humans_done.set()
        procs.stop_all()
        timer.cancel()


def execute(run: Run, procs: Processes) -> int:
    cfg = run.cfg
    rng = random.Random(cfg.seed)
    say(
        f"fresh database {cfg.db_name}, Redis db {cfg.redis_db}; web :{cfg.web_port}, gateway :{cfg.gateway_port};"
        f" logs in {cfg.run_dir / 'logs'}"
    )
    fresh_database(cfg)
    import redis

    redis.Redis.from_url(cfg.redis_url).flushdb()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    procs.start("gateway", gateway_argv(port=cfg.gateway_port, data_dir=cfg.run_dir / "gateway"))
    if not wait_http(f"{cfg.gateway}/_control/health", timeout=30, proc=procs.items["gateway"].proc):
        say(f"the sandbox gateway did not start; see {cfg.run_dir / 'logs' / 'gateway.log'}")
        return 2
    if cfg.sms_port:
        procs.start("sms", sms_argv(port=cfg.sms_port))
    if cfg.sms_port and not wait_http(
        f"http://127.0.0.1:{cfg.sms_port}/_sandbox/health", timeout=30, proc=procs.items["sms"].proc
    ):
        say(f"the sandbox SMS receiver did not start; see {cfg.run_dir / 'logs' / 'sms.log'}")
        return 2
    t0 = time.monotonic()
    merchants, reviewers = seed(cfg, rng)
    run.merchants = merchants
    say(f"seeded {len(merchants)} merchants with months of sales in {time.monotonic() - t0:.0f}s")
    connection.close()
    for channel, script in BASE_SCRIPTS.items():
        control(cfg, "PUT", f"/channels/{channel}/script", {**script, "seed": cfg.seed * 10 + len(channel)})
    for n in range(1, cfg.workers + 1):
        procs.start(f"worker{n}", worker_argv(node=f"chaos{n}", concurrency=cfg.concurrency))
    procs.start("beat", beat_argv(schedule=cfg.run_dir / "var" / "celerybeat-schedule"))
    procs.start("web", web_argv())
    if not wait_http(f"{cfg.base}/healthz/ready", timeout=60, proc=procs.items["web"].proc):
        say("the platform did not become ready; see var/chaos/logs/web.log")
        return 2

    items = plan(cfg, merchants, rng)
    say(f"load: {len(items)} withdrawals over {cfg.seconds:g}s; faults on")
    run.started = time.monotonic()
    humans_done = run.humans_done
    threads = [
        threading.Thread(target=faults, args=(run, procs, random.Random(cfg.seed + 1)), name="faults", daemon=True),
        threading.Thread(target=flapper, args=(run, random.Random(cfg.seed + 2)), name="flapper", daemon=True),
        threading.Thread(target=people, args=(run, merchants, reviewers, humans_done), name="people", daemon=True),
    ]
    for t in threads:
        t.start()
    loader = threading.Thread(target=load, args=(run, merchants, items), name="load", daemon=True)
    loader.start()
    deadline = time.monotonic() + cfg.seconds
    while time.monotonic() < deadline:
        time.sleep(min(10.0, max(0.1, deadline - time.monotonic())))
        with contextlib.suppress(Exception):
            states = db_retry(lambda: Counter(w.status for w in _all_withdrawals()))
            say(f"t+{time.monotonic() - run.started:.0f}s sent={len(run.submissions)} {dict(states)}")
    run.stop.set()
    loader.join(timeout=120)
    for t in threads[:2]:
        t.join(timeout=60)
    say("faults off; every channel healthy again; settling")
    calm(cfg)
    took = settle(run, procs)
    humans_done.set()
    threads[2].join(timeout=30)
    connection.close()
    verdict = db_retry(lambda: check(run, took))
    lines = [verdict.line, "", "faults injected:", *[f"  {f}" for f in run.fault_log], ""]
    lines += [*verdict.report]
    detail: list[str] = []
    for wid, reasons in sorted(verdict.offenders.items()):
        detail += [*explain(cfg, wid, reasons, cfg.run_dir / "logs"), ""]
    (cfg.run_dir / "report.txt").write_text("\n".join([*lines, "offending withdrawals:", *detail]) + "\n")
    print(verdict.line, flush=True)
    if verdict.failed:
        for line in verdict.report[:40]:
            print(line)
        shown = [line for line in detail][:400]
        if shown:
            print("offending withdrawals:")
            print("\n".join(shown))
        print(f"full report: {cfg.run_dir / 'report.txt'}; process logs: {cfg.run_dir / 'logs'}")
        return 1
    return 0


def _all_withdrawals() -> list[Any]:
    from withdrawals.models import Withdrawal

    return list(Withdrawal.objects.only("status"))


if __name__ == "__main__":
    sys.exit(main())
