"""Every random choice of a run comes from here: one independent stream per concern, derived from the seed.

Separate streams keep a run stable under small changes: adding a merchant action does not shift the network's
fault sequence. ``random.Random`` seeded with a string hashes it with SHA-512, so streams do not depend on
PYTHONHASHSEED.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Dice:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, name: str) -> random.Random:
        rng = self._streams.get(name)
        if rng is None:
            rng = self._streams[name] = random.Random(f"kamen-sim:{self.seed}:{name}")
        return rng

    def roll(self, name: str, probability: float) -> bool:
        """True with ``probability``; draws nothing when the probability is 0 (a disabled fault costs nothing)."""
        return probability > 0 and self.stream(name).random() < probability

    def uniform(self, name: str, low: float, high: float) -> float:
        return self.stream(name).uniform(low, high)

    def randint(self, name: str, low: int, high: int) -> int:
        return self.stream(name).randint(low, high)

    def choice(self, name: str, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
        return self.stream(name).choices(list(options), weights=weights)[0]

    def expo(self, name: str, mean: float) -> float:
        return self.stream(name).expovariate(1.0 / mean)

    def poisson(self, name: str, mean: float) -> int:
        """Knuth's method; fine for the small means used here."""
        rng = self.stream(name)
        if mean <= 0:
            return 0
        import math

        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
