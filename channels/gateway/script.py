"""Per-channel fault scripts: what the control API lets a test or a demo dial in.

Deterministic sandbox_rules behaviours (chosen by the payee account's last two digits) always win over these
random faults; see ``engine.Engine.submit`` for the exact order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from channels.sandbox_rules import DELAYED_SECONDS

# Pseudo provider codes accepted in ``force_codes``: not answers, but ways of not answering.
FORCE_TIMEOUT = "TIMEOUT"  # executed, answer withheld past the client's timeout
FORCE_DROP = "DROP"  # never executed, connection dropped


class ScriptError(ValueError):
    pass


def _rate(name: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ScriptError(f"{name} must be a number between 0 and 1")
    if not 0.0 <= rate <= 1.0:
        raise ScriptError(f"{name} must be between 0 and 1")
    return rate


@dataclass
class Script:
    latency_ms: int = 0  # added to every protocol request
    latency_jitter_ms: int = 0  # plus uniform 0..jitter
    failure_rates: dict[str, float] = field(default_factory=dict)  # provider code -> probability per submit
    timeout_rate: float = 0.0  # executed, but the answer is held back past the client's timeout
    drop_rate: float = 0.0  # dropped before executing (the request "never arrived")
    hang_seconds: float = 2.0  # how long a withheld answer hangs before the connection is closed
    maintenance: bool = False  # every submit is refused with the protocol's "unavailable" answer
    return_rate: float = 0.0  # probability that a paid payout is returned by the bank afterwards (退票)
    return_after_seconds: float = 5.0  # when a planned return happens (RETURNED behaviour or return_rate)
    callback_lost_rate: float = 0.0  # never delivered (still logged, status "lost")
    callback_duplicate_rate: float = 0.0  # delivered twice, byte-identical
    callback_late_rate: float = 0.0  # delivered callback_late_seconds later
    callback_late_seconds: float = 5.0
    callback_out_of_order_rate: float = 0.0  # held back until the channel's next callback has gone out
    force_codes: list[str] = field(default_factory=list)  # consumed one per new submit; also TIMEOUT / DROP
    auto_confirm: bool = False  # WeChat: the payee confirms at once instead of waiting
    delayed_seconds: float = DELAYED_SECONDS  # how long a DELAYED payout (card ending 44) stays processing
    seed: int | None = None  # seed the channel's random faults (applied on save)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Script:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ScriptError(f"unknown script keys: {', '.join(sorted(unknown))}")
        script = cls(**data)
        script.validate()
        return script

    def validate(self) -> None:
        for name in (
            "timeout_rate",
            "drop_rate",
            "return_rate",
            "callback_lost_rate",
            "callback_duplicate_rate",
            "callback_late_rate",
            "callback_out_of_order_rate",
        ):
            setattr(self, name, _rate(name, getattr(self, name)))
        if not isinstance(self.failure_rates, dict):
            raise ScriptError("failure_rates must be an object of provider code -> rate")
        self.failure_rates = {str(k): _rate(f"failure_rates.{k}", v) for k, v in self.failure_rates.items()}
        if sum(self.failure_rates.values()) > 1.0:
            raise ScriptError("failure_rates add up to more than 1")
        if not isinstance(self.force_codes, list):
            raise ScriptError("force_codes must be a list of provider codes")
        self.force_codes = [str(c) for c in self.force_codes]
        for name in ("latency_ms", "latency_jitter_ms"):
            if int(getattr(self, name)) < 0:
                raise ScriptError(f"{name} must be >= 0")
        for name in ("hang_seconds", "return_after_seconds", "callback_late_seconds", "delayed_seconds"):
            if float(getattr(self, name)) < 0:
                raise ScriptError(f"{name} must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
