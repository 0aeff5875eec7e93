"""Reads over risk state for people: linked accounts, list entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .engine.state import CARD, DEVICE, ID_NUMBER, IP, MERCHANT, PHONE
from .models import RiskLabel, RiskState


def risk_fraud_recorded(*, merchant_ref: str, since: datetime) -> bool:
    """Confirmed fraud or a review rejection recorded against the merchant since ``since`` (a tier that needs a
    clean history asks this through ``accounts.hooks``)."""
    return RiskLabel.objects.filter(merchant_ref=merchant_ref, fraud=True, created_at__gte=since).exists()


def risk_linked_accounts(*, merchant_subject: str, limit: int = 50) -> list[dict[str, Any]]:
    """Other merchants sharing a device, IP, card, phone or identity number with this one (from the engine's
    rows), most links first: ``[{"merchant": subject, "via": [{"kind", "value"}, ...]}]``."""
    m = RiskState.objects.filter(kind=MERCHANT, key=merchant_subject).values_list("data", flat=True).first() or {}
    wanted: list[tuple[str, str]] = [(DEVICE, d) for d in m.get("dev") or {}]
    wanted += [(IP, ip) for ip in m.get("ip") or {}]
    wanted += [(CARD, c) for c in m.get("cards") or {}]
    if m.get("phone"):
        wanted.append((PHONE, str(m["phone"])))
    if m.get("idn"):
        wanted.append((ID_NUMBER, str(m["idn"])))
    if not wanted:
        return []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    kinds: dict[str, list[str]] = {}
    for kind, key in wanted:
        kinds.setdefault(kind, []).append(key)
    for kind, keys in kinds.items():
        for key, data in RiskState.objects.filter(kind=kind, key__in=keys).values_list("key", "data"):
            rows[(kind, key)] = data
    links: dict[str, list[dict[str, str]]] = {}
    for (kind, key), data in sorted(rows.items()):
        members = data.get("m") or {}
        for other in members:  # a {merchant: [first, last]} map or a list of merchants
            if other != merchant_subject:
                links.setdefault(other, []).append({"kind": kind, "value": key})
    ranked = sorted(links.items(), key=lambda item: (-len(item[1]), item[0]))[:limit]
    return [{"merchant": other, "via": via} for other, via in ranked]
