"""The whole platform over simulated days (``simulation/``, ``make simulate``): real services, real tasks and
beat jobs, the real channel adapters against the sandbox gateway's engine, a clock that jumps instead of
sleeping, and faults from the seed. Every invariant must hold after every simulated hour.

Runs commit for real (transactional_db): the platform's on_commit hooks publish its tasks, two worker threads
hold their own connections, row locks are real.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from simulation.report import format_result
from simulation.runner import SimConfig, SimResult, run_simulation

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEEDS = [1, 2, 3]
DAYS = 7


# The sweeper and release_due every 5 minutes instead of every 1: each run costs a few milliseconds even when there
# is nothing to do, and a week has 10,080 minutes. Lost messages are still recovered within minutes; every bound is
# in hours. A failure prints the make simulate command with the same settings.
def _config(seed: int, days: float, *, profile: str = "", settle_hours: float = 30) -> SimConfig:
    return SimConfig(
        seed=seed, days=days, profile=profile, settle_hours=settle_hours, sweep_every=300, release_every=300
    )


# Seeds that once broke an invariant, kept so that what they found stays fixed: (seed, days, fault profile, what
# they found). SEEDS above failed too on d0f739f, before the fixes of issue 7: release_due raising on every run and
# sales never released (defect 2), a failed withdrawal retried twice (3), large withdrawals paid without two
# approvers (4).
REGRESSIONS: list[tuple[int, float, str, str]] = [
    (
        4,
        1,
        "flappy",
        "defect 1 on d0f739f, hour 6, withdrawal 24: its first request reached bank-direct only after the caller's "
        "timeout; the query found nothing, the resubmit met maintenance, the payout moved to Alipay and was paid; "
        "then the late request was paid by bank-direct too, and that success was ignored",
    ),
]


@pytest.fixture(autouse=True)
def _empty_database() -> None:
    """Every run starts from an empty migrated database with sequences at 1, as ``make simulate`` does, so a seed
    found here runs the same there."""
    call_command("flush", interactive=False, verbosity=0)


def _assert_ok(result: SimResult) -> None:
    assert result.ok, "\n" + format_result(result, show=4)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_simulated_week_holds_every_invariant(seed: int) -> None:
    _assert_ok(run_simulation(_config(seed, DAYS)))


@pytest.mark.parametrize(
    ("seed", "days", "profile", "found"), REGRESSIONS or [pytest.param(0, 0, "", "", marks=pytest.mark.skip)]
)
def test_seeds_that_once_failed_hold_every_invariant(seed: int, days: float, profile: str, found: str) -> None:
    _assert_ok(run_simulation(_config(seed, days, profile=profile, settle_hours=3)))


def test_the_same_seed_makes_the_same_run() -> None:
    """Same seed, same run: the figures (everything but wall-clock time) come out identical."""
    config = _config(11, 0.75, settle_hours=3)
    first = run_simulation(config)
    call_command("flush", interactive=False, verbosity=0)  # empty again, sequences at 1, as for the first run
    second = run_simulation(config)

    def comparable(result: SimResult) -> dict[str, object]:
        wall = ("wall_seconds", "task_wall_seconds", "other_wall_seconds", "error_logs")
        return {k: v for k, v in result.figures.items() if k not in wall}

    assert comparable(first) == comparable(second)
    assert first.figures["withdrawals_submitted"] > 0
    assert [(f.invariant, f.hour, f.withdrawal_id) for f in first.findings] == [
        (f.invariant, f.hour, f.withdrawal_id) for f in second.findings
    ]
