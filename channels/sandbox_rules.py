"""Deterministic sandbox behaviours, chosen by the last two digits of the payee account number.

Both the in-process sandbox channel and the sandbox gateway process use this table, so the demo, the tests and
a person trying the product can reach every payout path on purpose. Card numbers stay Luhn-valid: use
``make_card_number(suffix)`` to build one that ends in the wanted digits.
"""

from __future__ import annotations

import enum
import random


class Behaviour(enum.StrEnum):
    SUCCEED = "succeed"  # paid at once
    INVALID_ACCOUNT = "invalid_account"  # permanent failure: the account does not exist
    ACCOUNT_FROZEN = "account_frozen"  # permanent failure: the payee account is frozen
    TIMEOUT_THEN_PAID = "timeout_then_paid"  # accepted and paid, but our call times out (answer lost)
    DELAYED = "delayed"  # accepted; stays processing for a while, then paid
    TRANSIENT_TWICE = "transient_twice"  # "system busy" twice (not accepted), then paid
    LOST_REQUEST = "lost_request"  # the first request never arrives (timeout); a resubmit is paid
    NAME_MISMATCH = "name_mismatch"  # permanent: the bank says the holder name does not match
    RETURNED = "returned"  # paid, then returned by the payee's bank (退票)


SUFFIXES: dict[str, Behaviour] = {
    "11": Behaviour.INVALID_ACCOUNT,
    "22": Behaviour.ACCOUNT_FROZEN,
    "33": Behaviour.TIMEOUT_THEN_PAID,
    "44": Behaviour.DELAYED,
    "55": Behaviour.TRANSIENT_TWICE,
    "66": Behaviour.LOST_REQUEST,
    "77": Behaviour.NAME_MISMATCH,
    "88": Behaviour.RETURNED,
}
DELAYED_SECONDS = 20


def behaviour_for(account_number: str) -> Behaviour:
    digits = "".join(ch for ch in account_number if ch.isdigit())
    return SUFFIXES.get(digits[-2:], Behaviour.SUCCEED)


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these positions get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def make_card_number(suffix: str = "", *, prefix: str = "622202", length: int = 19, seed: int | None = None) -> str:
    """A Luhn-valid card number of ``length`` digits ending in ``suffix`` (at most 2 digits).

    With no suffix the number is one that simply pays (it avoids every behaviour suffix)."""
    if len(suffix) > 2 or (suffix and not suffix.isdigit()):
        raise ValueError("suffix is at most two digits")
    rng = random.Random(seed)
    while True:
        # All digits but the last two are free; the last one is the check digit.
        head = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 2))
        if suffix:
            # Tune the digit before the suffix until the check digit comes out as the suffix's last digit.
            for tuned in "0123456789":
                body = (head[:-1] + tuned + suffix)[:-1] if len(suffix) == 2 else head + tuned
                if luhn_check_digit(body) == suffix[-1]:
                    return body + suffix[-1]
        else:
            body = head + rng.choice("0123456789")
            number = body + luhn_check_digit(body)
            if behaviour_for(number) == Behaviour.SUCCEED:
                return number
