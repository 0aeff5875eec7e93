"""`make bench BENCH_ARGS="--only risk"`: risk decisions against a database holding >= 1M historical withdrawals.

1. Load history quickly (skipped when a previous run left it): ``merchants`` merchants with KYC and a card
   (bulk insert), ``history`` withdrawals spread over the last 90 days (one ``INSERT … SELECT`` from
   ``generate_series``, every other column at its model default), and the risk engine's matching state: a
   merchant row per merchant (full credit / withdrawal rings, devices, IPs, cards), device / IP / network /
   card rows, and one ``withdrawal`` row per historical withdrawal (also server-side SQL).
2. Replay throughput: a freshly generated event stream (``../shared/risk/generate.py``) through the live
   services (registration, KYC, logins, cards, sales, withdrawal submission), events per second.
3. Decision latency: ``risk_assess_withdrawal`` on live-shaped withdrawal events of the historical merchants
   (known and new devices / IPs, their cards), each in its own transaction as submission runs it; p50 / p99.

It loads history by raw SQL into the tables of three apps (accounts, withdrawals, risk), which is why it lives in
the top app: speed here needs ``INSERT … SELECT`` and ``COPY``, not the services.
"""

from __future__ import annotations

import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import KycRecord, Merchant, PayoutAccount
from risk.models import RiskState
from risk.services import risk_assess_withdrawal
from withdrawals.models import Withdrawal

from .replay import read_events, replay

SHARED_RISK = Path(__file__).resolve().parents[1].parent / "shared" / "risk"
DAY = 86_400


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _card(i: int) -> str:
    body = f"62220{i:013d}"
    digits = [int(c) for c in body]
    total = 0
    for k, d in enumerate(reversed(digits)):
        if k % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return body + str((10 - total % 10) % 10)


def _merchant_state(i: int, now: int, rng: random.Random) -> dict[str, Any]:
    reg = now - rng.randint(91, 400) * DAY
    dev, ip = f"dev_bench_{i}", f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
    credits = []
    ts = now - 20 * DAY
    for k in range(96):
        ts += rng.randint(600, 18_000)
        credits.append([ts, rng.randint(2_000, 60_000), 0, int(k % 7 == 0), 0, 0, f"buyer_{rng.randint(0, 400_000)}"])
    wds = []
    ts = now - 40 * DAY
    for _ in range(48):
        ts += rng.randint(12 * 3600, DAY)
        wds.append([ts, rng.randint(50_000, 400_000), _card(i), int(rng.random() < 0.3), 0])
    return {
        "reg_ts": reg, "first_ts": reg, "last_ts": now - 3600, "kind": "individual", "name": "王小明",
        "id_ok": True, "idn": f"bench-id-{i}", "phone": f"139{i:08d}",
        "dev": {dev: [reg, now - 3600]}, "ip": {ip: [reg, now - 3600]},
        "net": {ip.rsplit(".", 1)[0]: [reg, now - 3600]},
        "cards": {_card(i): {"ts": reg + 300, "match": True, "surname": True, "n": 0, "dev_age": 300}},
        "cr": credits, "cr_n": 900, "cr_sum": 18_000_000, "cr_gnew": 500_000, "cr_excl": 0, "buyers": 600,
        "cr_first": reg + 3600, "wd": wds, "wd_n": 200, "wd_sum": 16_000_000, "burst_max": 2, "wd_first": reg + DAY,
        "login_n": 300,
    }  # fmt: skip


def _copy_state(rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    now = timezone.now().isoformat()
    buf = io.StringIO()
    for kind, key, data in rows:
        text = json.dumps(data, separators=(",", ":")).replace("\\", "\\\\")
        buf.write(f"{kind}\t{key}\t{text}\t{now}\n")
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 cursor
        with raw.copy("COPY risk_riskstate (kind, key, data, updated_at) FROM STDIN") as copy:
            copy.write(buf.getvalue())


def load_history(*, history: int, merchants: int) -> None:
    have = Withdrawal.objects.filter(source="bench").count()
    state_rows = RiskState.objects.filter(kind="withdrawal", key__startswith="bench_w").count()
    if have >= history and state_rows >= have:
        print(f"risk: reusing {have:,} historical withdrawals (and their risk state) already in the database")
        return
    started = time.perf_counter()
    rng = random.Random(7)
    now = int(time.time())
    existing = Merchant.objects.filter(external_ref__startswith="bench_").count()
    if existing < merchants:
        made = Merchant.objects.bulk_create(
            [Merchant(name=f"历史商户{i}", external_ref=f"bench_{i}") for i in range(existing, merchants)],
            batch_size=5000,
        )
        KycRecord.objects.bulk_create(
            [
                KycRecord(merchant=m, real_name="王小明", id_number="11010519491231002X", phone="13900000000",
                          status="verified", level=2)
                for m in made
            ],
            batch_size=5000,
        )  # fmt: skip
        PayoutAccount.objects.bulk_create(
            [
                PayoutAccount(merchant=m, account_number=_card(int(m.external_ref[6:])), holder_name="王小明",
                              is_default=True)
                for m in made
            ],
            batch_size=5000,
        )  # fmt: skip
    print(f"risk: {merchants:,} merchants with KYC and a card in {time.perf_counter() - started:.1f} s")

    # Withdrawals: every column at its model default except the ones that matter, generated server-side.
    t0 = time.perf_counter()
    first_merchant = Merchant.objects.filter(external_ref="bench_0").values_list("pk", flat=True).get()
    first_account = PayoutAccount.objects.filter(merchant_id=first_merchant).values_list("pk", flat=True).get()
    n = max(0, history - have)
    exprs = {
        "merchant_id": f"{first_merchant} + mod(g, {merchants})",
        "payout_account_id": f"{first_account} + mod(g, {merchants})",
        "order_no": f"'BENCH' || lpad((g + {have})::text, 12, '0')",
        "amount": "50000 + mod(g * 7919, 450000)",
        "fee": "100",
        "net_amount": "49900 + mod(g * 7919, 450000)",
        "status": "'paid'",
        "source": "'bench'",
        "risk_outcome": "'allow'",
        "risk_score": "0",
        "created_at": "now() - make_interval(secs => mod(g, 7776000))",
        "updated_at": "now()",
        "state_changed_at": "now()",
        "paid_at": "now() - make_interval(secs => mod(g, 7776000))",
    }
    columns, selects, params = [], [], []
    for field in Withdrawal._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(f'"{field.column}"')
        if field.attname in exprs:
            selects.append(exprs[field.attname])
        else:
            value = field.get_default()
            selects.append("%s::jsonb" if field.get_internal_type() == "JSONField" else "%s")
            params.append(json.dumps(value) if field.get_internal_type() == "JSONField" else value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Withdrawal._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(selects)} FROM generate_series(1::bigint, %s::bigint) AS g",
            [*params, n],
        )
    print(f"risk: {n:,} historical withdrawals inserted in {time.perf_counter() - t0:.1f} s")

    # The engine's state for them.
    t0 = time.perf_counter()
    RiskState.objects.filter(key__startswith="bench").delete()
    RiskState.objects.filter(kind="device", key__startswith="dev_bench_").delete()
    RiskState.objects.filter(kind__in=["ip", "ip24"], key__startswith="10.").delete()
    RiskState.objects.filter(kind="card", key__startswith="62220").delete()
    batch: list[tuple[str, str, dict[str, Any]]] = []
    nets: dict[str, dict[str, Any]] = {}
    for i in range(merchants):
        state = _merchant_state(i, now, rng)
        batch.append(("merchant", f"bench_{i}", state))
        for dev in state["dev"]:
            batch.append(
                ("device", dev, {"m": {f"bench_{i}": state["dev"][dev]}, "reg": [[f"bench_{i}", state["reg_ts"]]]})
            )
        for ip in state["ip"]:
            batch.append(("ip", ip, {"m": {f"bench_{i}": state["ip"][ip]}}))
        for net in state["net"]:
            members = nets.setdefault(net, {"m": {}})["m"]
            if len(members) < 32:  # the engine caps entity member maps at 32
                members[f"bench_{i}"] = state["net"][net]
        batch.append(("card", _card(i), {"m": [f"bench_{i}"]}))
        if len(batch) >= 20_000:
            _copy_state(batch)
            batch = []
    _copy_state(batch + [("ip24", net, row) for net, row in nets.items()])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO risk_riskstate (kind, key, data, updated_at) "
            "SELECT 'withdrawal', 'bench_w' || w.id, jsonb_build_object('m', m.external_ref, "
            "'ts', extract(epoch from w.created_at)::bigint, 'dev', 'dev_' || m.external_ref, "
            "'ip', '10.0.0.1', 'card', p.account_number), now() "
            "FROM withdrawals_withdrawal w JOIN accounts_merchant m ON m.id = w.merchant_id "
            "JOIN accounts_payoutaccount p ON p.id = w.payout_account_id WHERE w.source = 'bench' "
            "ON CONFLICT (kind, key) DO NOTHING"
        )
        cursor.execute("ANALYZE withdrawals_withdrawal; ANALYZE risk_riskstate")
    print(f"risk: risk state rows for them in {time.perf_counter() - t0:.1f} s")


def bench_replay(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gen"
        subprocess.run(
            [sys.executable, str(SHARED_RISK / "generate.py"), "--out-dir", str(out), "--seed", "31",
             "--merchants", "80", "--days", "20"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        stream = []
        for i, event in enumerate(read_events(out / "events.jsonl")):
            if i >= events:
                break
            # Fresh ids per run so the bench can run again on the same database.
            event["merchant"] = f"r{int(time.time())}_{event['merchant']}"
            for key in ("withdrawal", "order"):
                if key in event:
                    event[key] = f"r{int(time.time())}_{event[key]}"
            stream.append(event)
        stats = replay(iter(stream), io.StringIO())
    ms = stats.decision_ms or [0.0]
    print(
        f"risk replay: {stats.events} events through the services in {stats.seconds:.1f} s = "
        f"{stats.events / stats.seconds:.0f} events/s; {stats.withdrawals} withdrawal submissions, "
        f"submit p50 {statistics.median(ms):.1f} ms, p99 {_pct(ms, 99):.1f} ms"
    )


def bench_decisions(*, merchants: int, decisions: int) -> None:
    rng = random.Random(11)
    latencies = []
    now = datetime.now(tz=UTC)
    for k in range(decisions):
        i = rng.randrange(merchants)
        new_access = rng.random() < 0.2
        home_ip = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
        event = {
            "type": "withdrawal_requested",
            "ts": (now + timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "merchant": f"bench_{i}",
            "withdrawal": f"bench_live_{int(now.timestamp())}_{k}",
            "amount": rng.randint(10_000, 500_000),
            "card": _card(i),
            "speed": rng.choice(["instant", "standard", "t1"]),
            "ip": f"172.16.{k % 256}.{k // 256 % 256}" if new_access else home_ip,
            "device": f"dev_new_{k}" if new_access else f"dev_bench_{i}",
        }  # fmt: skip
        t0 = time.perf_counter()
        with transaction.atomic():
            risk_assess_withdrawal(event=event)
        latencies.append((time.perf_counter() - t0) * 1000)
    print(
        f"risk decisions: {decisions} live-shaped decisions (risk_assess_withdrawal, own transaction each): "
        f"p50 {_pct(latencies, 50):.2f} ms, p99 {_pct(latencies, 99):.2f} ms, max {max(latencies):.1f} ms"
    )


def bench_risk(history: int = 1_000_000, merchants: int = 20_000, events: int = 3_000, decisions: int = 3_000) -> None:
    load_history(history=history, merchants=merchants)
    print(f"risk: database holds {Withdrawal.objects.count():,} withdrawals")
    bench_decisions(merchants=merchants, decisions=decisions)
    if (SHARED_RISK / "generate.py").is_file():
        bench_replay(events)
    else:
        print(f"risk replay: skipped ({SHARED_RISK / 'generate.py'} not found)")
