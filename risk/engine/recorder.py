"""Folding events into the engine's state: the incremental aggregates that features are computed from.

Each function takes the rows of one event (through a :class:`UnitOfWork`) and updates them in place. Nothing
here reads history: every update is O(size of a capped row).
"""

from __future__ import annotations

import math
from typing import Any

from accounts.identity import id_number_valid, normalise_name

from .state import (
    BUYER,
    CARD,
    DEVICE,
    ID_NUMBER,
    IP,
    MERCHANT,
    NET24,
    PHONE,
    PLATFORM,
    WITHDRAWAL,
    Row,
    UnitOfWork,
    add_capped,
    ring_append,
    touch,
)

DAY = 86_400
HOUR = 3_600

# Bounds of every per-entity structure.
CAP_MERCHANT_DEVICES = 16
CAP_MERCHANT_IPS = 24
CAP_MERCHANT_CARDS = 8
CAP_CREDITS = 96
CAP_WITHDRAWALS = 48
CAP_ENTITY_MERCHANTS = 32
CAP_BUYER_MERCHANTS = 8
CAP_FLAGGED_BUYERS = 32
DORMANT_GAP = 30 * DAY  # a silence this long makes the next activity a reactivation


def net24(ip: str | None) -> str | None:
    if not ip or ip.count(".") != 3:
        return None
    return ip.rsplit(".", 1)[0]


def merchant_activity(m: Row, now: int) -> None:
    """Track first/last activity and reactivation after a long silence."""
    last = m.get("last_ts")
    if last is not None and now - last >= DORMANT_GAP:
        m["react_ts"] = now
        m["react_seen"] = False
        m["gap_d"] = round((now - last) / DAY, 2)
    if last is None or now > last:
        m["last_ts"] = now
    if m.get("first_ts") is None or now < m["first_ts"]:
        m["first_ts"] = now


def access(uow: UnitOfWork, merchant: str, m: Row, ip: str | None, device: str | None, now: int) -> None:
    """A merchant used (ip, device): update the merchant's maps and the entities' member maps."""
    if m.get("react_ts") is not None and not m.get("react_seen"):
        # The first access after a long silence: was it from a device / IP the account knew?
        m["react_seen"] = True
        m["react_new_dev"] = bool(device) and device not in (m.get("dev") or {})
        m["react_new_ip"] = bool(ip) and ip not in (m.get("ip") or {})
    if device:
        touch(m.setdefault("dev", {}), device, now, CAP_MERCHANT_DEVICES)
        d = uow.row(DEVICE, device)
        touch(d.setdefault("m", {}), merchant, now, CAP_ENTITY_MERCHANTS)
        uow.changed(DEVICE, device)
    if ip:
        touch(m.setdefault("ip", {}), ip, now, CAP_MERCHANT_IPS)
        r = uow.row(IP, ip)
        touch(r.setdefault("m", {}), merchant, now, CAP_ENTITY_MERCHANTS)
        uow.changed(IP, ip)
        net = net24(ip)
        if net:
            touch(m.setdefault("net", {}), net, now, CAP_MERCHANT_IPS)
            n = uow.row(NET24, net)
            touch(n.setdefault("m", {}), merchant, now, CAP_ENTITY_MERCHANTS)
            uow.changed(NET24, net)


def record_event(uow: UnitOfWork, event: dict[str, Any], now: int) -> None:
    """Fold one non-withdrawal event into state."""
    etype = event.get("type")
    if etype == "fraud_confirmed":
        record_feedback(uow, event, now)
        return
    merchant = str(event["merchant"])
    m = uow.row(MERCHANT, merchant)
    uow.changed(MERCHANT, merchant)
    merchant_activity(m, now)
    if etype == "sale_credited":
        record_credit(uow, merchant, m, event, now)
        return
    access(uow, merchant, m, event.get("ip"), event.get("device"), now)
    if etype == "merchant_registered":
        record_registration(uow, merchant, m, event, now)
    elif etype == "login":
        m["login_n"] = m.get("login_n", 0) + 1
    elif etype == "phone_changed":
        m["phone_ts"] = now
        m["phone_n"] = m.get("phone_n", 0) + 1
        if event.get("phone"):
            m["phone"] = str(event["phone"])
        link_entity(uow, PHONE, event.get("phone"), merchant)
    elif etype == "bank_card_bound":
        record_card(uow, merchant, m, event, now)


def record_registration(uow: UnitOfWork, merchant: str, m: Row, event: dict[str, Any], now: int) -> None:
    m["reg_ts"] = now
    m["kind"] = event.get("kind")
    if event.get("category"):
        m["cat"] = str(event["category"])
    m["name"] = normalise_name(event.get("name") or "")
    id_number = str(event.get("id_number") or "")
    # The platform passes a keyed hash as the number and its validity beside it (risk.services).
    valid = event.get("id_number_valid")
    m["id_ok"] = bool(valid) if valid is not None else id_number_valid(id_number)
    # Kept for list lookups and linked-account views (the rows below hold the reverse links).
    if id_number:
        m["idn"] = id_number
    if event.get("phone"):
        m["phone"] = str(event["phone"])
    for kind, key in ((DEVICE, event.get("device")), (IP, event.get("ip")), (NET24, net24(event.get("ip")))):
        if key:
            row = uow.row(kind, key)
            ring_append(row.setdefault("reg", []), [merchant, now], CAP_ENTITY_MERCHANTS)
            uow.changed(kind, key)
    link_entity(uow, PHONE, event.get("phone"), merchant)
    link_entity(uow, ID_NUMBER, id_number or None, merchant)


def link_entity(uow: UnitOfWork, kind: str, key: str | None, merchant: str) -> None:
    if not key:
        return
    row = uow.row(kind, key)
    if add_capped(row.setdefault("m", []), merchant, CAP_ENTITY_MERCHANTS):
        uow.changed(kind, key)


def record_card(uow: UnitOfWork, merchant: str, m: Row, event: dict[str, Any], now: int) -> None:
    card = str(event.get("card") or "")
    if not card:
        return
    holder = normalise_name(event.get("holder_name") or "")
    kyc = m.get("name") or ""
    cards = m.setdefault("cards", {})
    device = event.get("device")
    device_seen = (m.get("dev") or {}).get(device)
    cards[card] = {
        "ts": now,
        "match": (not kyc) or (holder == kyc),
        "surname": bool(kyc) and holder[:1] == kyc[:1],
        "n": len(cards),  # 0 for the first card bound
        "dev_age": now - device_seen[0] if device_seen else 0,
    }
    if len(cards) > CAP_MERCHANT_CARDS:
        del cards[min(cards, key=lambda c: cards[c]["ts"])]
    link_entity(uow, CARD, card, merchant)


def record_credit(uow: UnitOfWork, merchant: str, m: Row, event: dict[str, Any], now: int) -> None:
    amount = int(event.get("amount") or 0)
    buyer = str(event.get("buyer") or "")
    b = uow.get(BUYER, buyer)
    globally_new = b is None
    b = uow.row(BUYER, buyer)
    members = b.setdefault("m", {})
    new_to_merchant = merchant not in members
    exclusive = all(k == merchant for k in members)
    flagged = bool(b.get("flag"))
    members[merchant] = members.get(merchant, 0) + 1
    if len(members) > CAP_BUYER_MERCHANTS:
        del members[min(members, key=lambda k: members[k])]
    b["n"] = b.get("n", 0) + 1
    b.setdefault("first_ts", now)
    uow.changed(BUYER, buyer)
    ring_append(
        m.setdefault("cr", []),
        [now, amount, int(globally_new), int(new_to_merchant), int(exclusive), int(flagged), buyer],
        CAP_CREDITS,
    )
    m["cr_n"] = m.get("cr_n", 0) + 1
    m["cr_sum"] = m.get("cr_sum", 0) + amount
    m["cr_gnew"] = m.get("cr_gnew", 0) + amount * globally_new
    m["cr_excl"] = m.get("cr_excl", 0) + amount * exclusive
    m["buyers"] = m.get("buyers", 0) + new_to_merchant
    m.setdefault("cr_first", now)
    count_platform(uow, "credits", now)
    count_credit_size(uow, peer_group(m), amount)


PLATFORM_HOURS = 8 * 24  # hourly buckets kept
SIZE_BUCKETS_PER_DOUBLING = 4  # credit sizes are kept as a histogram of log2(amount in fen) in quarter steps
SIZE_HISTORY = 4000  # the histogram decays so that it describes about the last this-many credits of a category


def size_bucket(amount: int) -> int:
    return int(math.log2(max(1, amount)) * SIZE_BUCKETS_PER_DOUBLING)


def peer_group(m: Row) -> str:
    """The merchant's peers for credit sizes: its category and kind (a business sells in larger orders)."""
    return f"{m.get('cat') or 'any'}:{m.get('kind') or 'any'}"


def count_credit_size(uow: UnitOfWork, category: str, amount: int) -> None:
    """The peers' credit sizes: per category, a decaying histogram of log2(amount) (bounded: ~100 buckets).

    It lives in the same platform row as the hourly counter (one hot row, not two). Decay: when a category's
    total passes SIZE_HISTORY, every bucket is halved, so a new marketplace's or a new season's sizes take over.
    """
    row = uow.row(PLATFORM, "credits")
    sizes = row.setdefault("sz", {}).setdefault(category, {})
    bucket = str(size_bucket(amount))
    sizes[bucket] = sizes.get(bucket, 0) + 1
    total = sum(sizes.values())
    if total > SIZE_HISTORY:
        for key in list(sizes):
            sizes[key] //= 2
            if not sizes[key]:
                del sizes[key]
    uow.changed(PLATFORM, "credits")


def count_platform(uow: UnitOfWork, counter: str, now: int) -> None:
    """Platform-wide hourly counter: lets features tell a platform event (a promotion) from one merchant.

    This is the one hot row (every sale touches it); a database-backed store should keep it in a sharded
    counter or a cache rather than lock one row per sale.
    """
    row = uow.row(PLATFORM, counter)
    hours = row.setdefault("h", {})
    hour = str(now // HOUR)
    hours[hour] = hours.get(hour, 0) + 1
    if len(hours) > PLATFORM_HOURS + 8:
        oldest = now // HOUR - PLATFORM_HOURS
        for key in [k for k in hours if int(k) < oldest]:
            del hours[key]
    uow.changed(PLATFORM, counter)


CAP_BURST_MERCHANTS = 64  # merchants remembered per hour as paying out in a burst


def mark_platform_burst(uow: UnitOfWork, merchant: str, now: int) -> None:
    """Platform-wide: which merchants paid out in a burst (2+ withdrawals in the burst window) in each hour.

    A promotion makes many merchants pay out in instalments at once; one merchant's velocity burst is one
    merchant however many withdrawals it makes, so features count merchants, not withdrawals."""
    row = uow.row(PLATFORM, "bursts")
    hours = row.setdefault("h", {})
    members = hours.setdefault(str(now // HOUR), [])
    if merchant not in members and len(members) < CAP_BURST_MERCHANTS:
        members.append(merchant)
    if len(hours) > PLATFORM_HOURS + 8:
        oldest = now // HOUR - PLATFORM_HOURS
        for key in [k for k in hours if int(k) < oldest]:
            del hours[key]
    uow.changed(PLATFORM, "bursts")


def record_withdrawal(
    uow: UnitOfWork, merchant: str, m: Row, event: dict[str, Any], now: int, intercepted: bool, burst: int
) -> None:
    amount = int(event.get("amount") or 0)
    ring_append(
        m.setdefault("wd", []),
        [now, amount, str(event.get("card") or ""), int(event.get("speed") == "instant"), int(intercepted)],
        CAP_WITHDRAWALS,
    )
    m["wd_n"] = m.get("wd_n", 0) + 1
    m["wd_sum"] = m.get("wd_sum", 0) + amount
    m["burst_max"] = max(m.get("burst_max", 0), burst)
    if burst >= 2:
        mark_platform_burst(uow, merchant, now)
    m.setdefault("wd_first", now)
    uow.changed(MERCHANT, merchant)
    wid = event.get("withdrawal")
    if wid:
        uow.store.put(
            WITHDRAWAL,
            str(wid),
            {
                "m": merchant,
                "ts": now,
                "dev": event.get("device"),
                "ip": event.get("ip"),
                "card": event.get("card"),
            },
        )


def record_feedback(uow: UnitOfWork, event: dict[str, Any], now: int) -> None:
    """Confirmed fraud: list the merchant and the device, IP and card it used; link accounts sharing them."""
    w = uow.get(WITHDRAWAL, str(event.get("withdrawal") or ""))
    merchant = str(event.get("merchant") or (w or {}).get("m") or "")
    if not merchant:
        return
    m = uow.row(MERCHANT, merchant)
    m["flag"] = now
    uow.changed(MERCHANT, merchant)
    linked: set[str] = set()
    if w:
        for kind, key in ((DEVICE, w.get("dev")), (IP, w.get("ip")), (CARD, w.get("card"))):
            if not key:
                continue
            row = uow.row(kind, key)
            row["flag"] = now
            uow.changed(kind, key)
            members = row.get("m") or {}
            linked.update(members)
    # Buyers that first appeared at this merchant and never bought anywhere else were most likely created
    # by the fraud actor (ordinary buyers from the platform's pool soon show up at other shops).
    for credit in m.get("cr", [])[-CAP_FLAGGED_BUYERS:]:
        if credit[2]:
            b = uow.get(BUYER, credit[6])
            if b is not None and set(b.get("m") or {}) == {merchant}:
                b["flag"] = now
                uow.changed(BUYER, credit[6])
    linked.discard(merchant)
    for other in sorted(linked):
        o = uow.row(MERCHANT, other)
        o["link"] = now
        uow.changed(MERCHANT, other)
