"""Identity checks: resident identity numbers (GB 11643-1999) and holder-name comparison.

Pure Python: KYC (accounts) and the risk engine (``risk.engine``, which needs no Django) both use them."""

from __future__ import annotations

import unicodedata

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 (ISO 7064 MOD 11-2) check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need 17 digits")
    return ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_number_valid(id_number: str) -> bool:
    """True if ``id_number`` is 17 digits followed by the right check character (``x`` accepted for ``X``)."""
    value = (id_number or "").strip().upper()
    if len(value) != 18 or not value[:17].isdigit():
        return False
    return id_check_char(value[:17]) == value[17]


def normalise_name(name: str) -> str:
    """A name as compared: NFKC (full-width forms folded) with all whitespace, including U+3000, removed."""
    return "".join(unicodedata.normalize("NFKC", name or "").split()).casefold()
