"""A tiny `make chaos`: real processes (gunicorn, two Celery workers, beat, the sandbox gateway) on PostgreSQL
and Redis, faults injected, then the money invariants. The full run is `make chaos` (and the reduced run in
.ci/run); this one only proves the harness runs end to end and that nothing was paid twice.

It takes about 90 s on two cores (a fresh database, the processes' start-up, 30 s of load, settling), more
than a unit test should, so it runs only when CHAOS_TEST=1; the reduced `make chaos` in .ci/run covers CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CHAOS_TEST") != "1", reason="minutes of real processes: CHAOS_TEST=1"),
]


def test_a_short_chaos_run_injects_faults_and_pays_nothing_twice(tmp_path):
    db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kamen").rsplit("/", 1)[-1]
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/chaos.py",
            "--seconds",
            "30",
            "--rate",
            "1.5",
            "--merchants",
            "6",
            "--settle-seconds",
            "150",
            "--db-name",
            f"{db}_chaos",
            "--run-dir",
            str(tmp_path / "chaos"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    summary = next((line for line in proc.stdout.splitlines() if line.startswith("CHAOS SUMMARY")), "")
    assert summary, output[-4000:]
    faults = dict(re.findall(r"(\w+)=(\d+)", summary.split("| faults:", 1)[1].split("|", 1)[0]))
    for kind in ("worker_kill", "gateway_restart", "pg_terminate"):
        assert int(faults.get(kind, 0)) >= 1, summary
    assert "double_paid=0" in summary, output[-6000:]
    assert proc.returncode == 0, output[-6000:]
