#!/usr/bin/env python
"""Run the deterministic simulation (simulation/) against a fresh PostgreSQL database.

    python scripts/simulate.py --seed 1 --days 7            # what `make simulate SEED=1 DAYS=7` runs
    python scripts/simulate.py --seeds 1,2,3 --days 90

The database named by DATABASE_URL (default postgres://postgres@127.0.0.1:5432/kamen_sim) is dropped and
created again for every seed, from a template migrated once per invocation; its name must contain "sim".
Exit status 1 when any invariant failed: the seed, the simulated hour, the withdrawal and its events are
printed, and the same command with the same seed reproduces the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/kamen_sim"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", default="", help="comma-separated seeds (overrides --seed)")
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--settle-hours", type=float, default=30)
    parser.add_argument("--merchants", type=int, default=0, help="0: 8–12 chosen by the seed")
    parser.add_argument("--profile", default="", choices=["", "calm", "moderate", "harsh", "flappy", "none"])
    parser.add_argument(
        "--sweep-every", type=float, default=60, help="sweeper interval in seconds (0: the beat schedule's, 15)"
    )
    parser.add_argument(
        "--release-every", type=float, default=0, help="release_due interval in seconds (0: the beat schedule's, 60)"
    )
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument("--show", type=int, default=8, help="findings to print in full")
    parser.add_argument("--json", default="", help="write figures and findings here")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = urlsplit(url).path.lstrip("/")
    if "sim" not in name:
        print(f"refusing to recreate database {name!r}: its name must contain 'sim'", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.pop("CACHE_URL", None)
    # The test suite's settings where the platform has them (not production: in-process SMS outbox, plain HTTP).
    has_test_settings = (REPO / "config" / "settings_test.py").exists()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test" if has_test_settings else "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))

    template = f"{name}_template"
    _recreate(url, template)
    import django

    os.environ["DATABASE_URL"] = _with_db(url, template)
    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    # Empty, sequences at 1: the state tests/test_simulation.py starts from, so a seed runs the same in both.
    call_command("flush", interactive=False, verbosity=0)
    connection.close()
    print(f"migrated {template} in {time.perf_counter() - started:.1f}s", flush=True)

    from simulation.report import format_result
    from simulation.runner import SimConfig, run_simulation

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds else [args.seed]
    results = []
    failed = False
    for seed in seeds:
        connections["default"].close()
        _recreate(url, name, template=template)
        connections["default"].settings_dict["NAME"] = name
        config = SimConfig(
            seed=seed,
            days=args.days,
            settle_hours=args.settle_hours,
            merchants=args.merchants,
            profile=args.profile,
            sweep_every=args.sweep_every,
            release_every=args.release_every,
            stop_on_failure=args.stop_on_failure,
        )
        result = run_simulation(config, progress=lambda line: print(f"  {line}", flush=True))
        connections["default"].close()
        print(format_result(result, show=args.show, command=_command(seed, args)), flush=True)
        results.append(result)
        failed = failed or not result.ok
    if len(results) > 1:
        print(f"\n{len(results)} seeds: " + ", ".join(f"{r.config.seed} {'ok' if r.ok else 'FAILED'}" for r in results))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "figures": r.figures,
                        "findings": [
                            {
                                "invariant": f.invariant,
                                "hour": f.hour,
                                "withdrawal": f.withdrawal_id,
                                "message": f.message,
                                "evidence": f.evidence,
                                "detail": f.detail,
                            }
                            for f in r.findings
                        ],
                    }
                    for r in results
                ],
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
    return 1 if failed else 0


def _command(seed: int, args: argparse.Namespace) -> str:
    from simulation.report import reproduce

    return reproduce(
        seed=seed,
        days=args.days,
        profile=args.profile,
        sweep_every=args.sweep_every,
        release_every=args.release_every,
        settle_hours=args.settle_hours,
        merchants=args.merchants,
    )


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _recreate(url: str, name: str, *, template: str = "") -> None:
    import psycopg

    with psycopg.connect(_with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


if __name__ == "__main__":
    sys.exit(main())
