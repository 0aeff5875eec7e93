#!/usr/bin/env python3
"""`make bench`: measured figures, printed. Never asserted in tests.

Parts (choose with --only): `submit` — concurrent withdrawal submissions (validate, quote, limits, hold, risk,
commit) with their latency; `payout` — background payout throughput through the in-process sandbox channel;
`risk` — replay throughput and risk decision latency with >= 1M historical withdrawals in the database
(see operations/bench.py). Uses DATABASE_URL (make bench defaults to a dedicated PostgreSQL database).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ensure_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[-1]
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
                conn.execute(f'create database "{name}"')


def _no_enqueue(withdrawal_id: int, *, seq: int | None = None, countdown: int = 0) -> None:
    """Stands in for a dispatch enqueue: the bench measures one step without the broker."""


def bench_submit(merchants: int, per_merchant: int, threads: int) -> None:
    from django.db import connections

    from tests.factories import ChannelFactory, MerchantFactory
    from withdrawals import dispatch, services
    from withdrawals.fees import policy_current

    ChannelFactory()
    policy = policy_current()
    policy.daily_count_limit = 10_000
    policy.daily_amount_limit = 10**12
    policy.save()
    dispatch.enqueue_payout = _no_enqueue  # acceptance only
    people: list[Any] = [MerchantFactory(credit=per_merchant * 20_000) for _ in range(merchants)]
    jobs = [(m.pk, m.payout_accounts.get(is_default=True).pk) for m in people for _ in range(per_merchant)]
    latencies: list[float] = []
    lock = threading.Lock()

    def one(job: tuple[int, int]) -> None:
        t0 = time.perf_counter()
        services.withdrawal_submit(merchant_id=job[0], payout_account_id=job[1], amount=10_000)
        with lock:
            latencies.append((time.perf_counter() - t0) * 1000)

    def run(chunk: list[tuple[int, int]]) -> None:
        try:
            for job in chunk:
                one(job)
        finally:
            connections.close_all()

    chunks = [jobs[i::threads] for i in range(threads)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, chunks))
    elapsed = time.perf_counter() - start
    print(
        f"submit: {len(jobs)} withdrawals by {merchants} merchants on {threads} threads in {elapsed:.2f} s "
        f"= {len(jobs) / elapsed:.0f}/s; latency p50 {pct(latencies, 50):.1f} ms, p99 {pct(latencies, 99):.1f} ms"
    )


def bench_payout(limit: int) -> None:
    from withdrawals import dispatch, payouts
    from withdrawals.models import Status, Withdrawal

    ids = list(Withdrawal.objects.filter(status=Status.APPROVED).values_list("pk", flat=True)[:limit])
    if not ids:
        print("payout: nothing approved to pay (run the submit part first)")
        return
    dispatch.enqueue_query = _no_enqueue
    latencies = []
    start = time.perf_counter()
    for wid in ids:
        t0 = time.perf_counter()
        payouts.payout_run(withdrawal_id=wid)
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    paid = Withdrawal.objects.filter(pk__in=ids, status=Status.PAID).count()
    print(
        f"payout: {len(ids)} payouts (route, submit, post to ledger) in {elapsed:.2f} s = {len(ids) / elapsed:.0f}/s "
        f"on one worker process; {paid} paid; "
        f"per payout p50 {pct(latencies, 50):.1f} ms, p99 {pct(latencies, 99):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["submit", "payout", "risk"], action="append")
    parser.add_argument("--merchants", type=int, default=40)
    parser.add_argument("--per-merchant", type=int, default=25)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--history", type=int, default=1_000_000, help="historical withdrawals for the risk part")
    args = parser.parse_args()
    parts = args.only or ["submit", "payout", "risk"]
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; cores: {os.cpu_count()}")
    if "submit" in parts:
        bench_submit(args.merchants, args.per_merchant, args.threads)
    if "payout" in parts:
        bench_payout(args.merchants * args.per_merchant)
    if "risk" in parts:
        from operations.bench import bench_risk

        bench_risk(history=args.history)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory: peak RSS of the bench process {rss:.0f} MiB")


if __name__ == "__main__":
    main()
