"""Named crash points on the money path, for the simulation and the chaos tests.

``crash_point("payout.after_submit", withdrawal_id)`` does nothing unless a hook is installed; the simulation
installs one that raises at chosen points, leaving the state exactly as a killed worker would (whatever was
committed stays, the rest is rolled back, the lease is left to expire). Production never installs a hook.
"""

from __future__ import annotations

from collections.abc import Callable

Hook = Callable[[str, int], None]
_hook: Hook | None = None

POINTS = (
    "payout.after_route",  # committed processing + lease, nothing sent yet
    "payout.before_submit",  # about to call the channel
    "payout.after_submit",  # the channel answered (or timed out); nothing recorded yet
    "payout.before_ledger_post",  # inside the paying transaction, after the state moved, before the ledger post
)


class CrashInjected(RuntimeError):
    """Raised by a hook to stop the current task as a crash would."""


def crash_point(name: str, withdrawal_id: int) -> None:
    if _hook is not None:
        _hook(name, withdrawal_id)


def crash_hook_install(hook: Hook | None) -> Hook | None:
    """Install ``hook`` (None removes it); returns the previous one."""
    global _hook
    previous, _hook = _hook, hook
    return previous
