"""Human-readable output of a run: figures, then findings with the seed, the hour, the withdrawal and its
events, and the command that reproduces the run."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import SimResult


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"


def format_figures(f: dict[str, Any]) -> list[str]:
    faults = f["faults"]
    injected = sum(faults.values())
    return [
        f"seed {f['seed']} ({f['profile']} faults): {f['sim_days']:g} days + {f['settle_hours']:g} h settling, "
        f"{f['merchants']} merchants, wall {f['wall_seconds']}s, {f['events']} events, {f['checks']} hourly checks",
        f"  sales: {f['sales']} (¥{f['sales_yuan']:,})",
        f"  withdrawals: {f['withdrawals_submitted']} submitted; by state: {_kv(f['withdrawals_by_state'])}",
        f"  refused at submission: {_kv(f['submissions_refused'])}",
        f"  faults injected ({injected}): {_kv(faults)}",
        f"  crash points: {f['crash_points']}",
        f"  gateway book: {_kv(f['gateway_book'])}",
        f"  retries: {f['retries']} (second clicks that made another: {f['retries_second_click']}, refused: "
        f"{f['retries_refused']})",
        f"  reviews: {_kv(f['reviews'])}",
        f"  step-ups: {_kv(f['step_ups'])}; cancellations {f['cancellations']}",
        f"  reversals: {f['reversals']}; reports: {_kv(f['reports'])}",
        f"  tasks: {_kv(f['tasks'])}",
        f"  wall time (s): tasks: {_kv(f['task_wall_seconds'])}; other: {_kv(f['other_wall_seconds'])}",
        f"  statement differences: {_kv(f['statement_differences'])}",
        f"  statements never imported: {'; '.join(f.get('statements_missing', [])) or 'none'}",
        f"  task errors: {_kv(f['task_errors'])}",
        f"  warnings and errors logged: {_kv(f['logs'])}",
        *(f"    error log ×{n}: {text}" for text, n in f.get("error_logs", {}).items()),
        f"  other counts: {_kv(f['counts'])}",
        f"  findings: {_kv(f['findings'])}",
    ]


def reproduce(
    *,
    seed: int,
    days: float,
    profile: str = "",
    sweep_every: float = 60,
    release_every: float = 0,
    settle_hours: float = 30,
    merchants: int = 0,
) -> str:
    """The command that runs the same simulation again."""
    extra = []
    if profile:
        extra.append(f"--profile {profile}")
    if sweep_every != 60:
        extra.append(f"--sweep-every {sweep_every:g}")
    if release_every:
        extra.append(f"--release-every {release_every:g}")
    if settle_hours != 30:
        extra.append(f"--settle-hours {settle_hours:g}")
    if merchants:
        extra.append(f"--merchants {merchants}")
    args = f" SIM_ARGS='{' '.join(extra)}'" if extra else ""
    return f"make simulate SEED={seed} DAYS={days:g}{args}"


def format_result(result: SimResult, *, show: int = 8, command: str = "") -> str:
    c = result.config
    command = command or reproduce(
        seed=c.seed,
        days=c.days,
        profile=c.profile,
        sweep_every=c.sweep_every,
        release_every=c.release_every,
        settle_hours=c.settle_hours,
        merchants=c.merchants,
    )
    lines = format_figures(result.figures)
    if result.ok:
        lines.append(f"  every invariant held (seed {result.config.seed})")
        return "\n".join(lines)
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for f in result.findings:
        by_kind[f.invariant].append(f)
    shown = 0
    lines.append(f"  INVARIANTS FAILED (seed {result.config.seed}) — reproduce with: {command}")
    for kind, found in by_kind.items():
        lines.append(f"  [{kind}] {len(found)} finding(s); first at hour {found[0].hour}")
        for f in found[: max(1, show - shown) if shown < show else 1]:
            shown += 1
            where = f" withdrawal {f.withdrawal_id}" if f.withdrawal_id is not None else ""
            lines.append(f"    seed {result.config.seed} hour {f.hour}{where}: {f.message}")
            if shown <= show:
                lines.extend(f"      {e}" for e in f.evidence)
                if f.detail:
                    lines.extend(f"      | {d}" for d in f.detail.strip().splitlines()[-12:])
    return "\n".join(lines)
