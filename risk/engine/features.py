"""Features of a withdrawal, computed at decision time from the engine's state.

:func:`compute_features` reads the merchant row and the rows of the device, IP, /24 network and card the
withdrawal uses (a handful of key lookups) and returns a flat ``{name: float}`` dict. Booleans are 0/1.
Ages in hours are capped at :data:`NEVER_H` ("never happened"). Every feature is about the state *before* the
withdrawal being decided; the engine records the withdrawal afterwards.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from .recorder import DAY, HOUR, SIZE_BUCKETS_PER_DOUBLING, net24, peer_group
from .state import CARD, DEVICE, IP, MERCHANT, NET24, PLATFORM, Row, UnitOfWork

NEVER_H = 99_999.0  # age, in hours, of something that never happened
YUAN = 100


@dataclass(frozen=True)
class FeatureConfig:
    large_value_threshold_fen: int = 5_000_000  # 50,000 yuan: reported to the regulator at or above this
    near_threshold_band: float = 0.1  # "just under" = within this fraction below the threshold
    cluster_window_h: int = 72  # window for distinct merchants on a shared IP / network / device
    burst_window_h: int = 2
    recent_credit_h: int = 72
    reactivation_window_d: int = 30  # a reactivation counts for this long


DEFAULT_FEATURE_CONFIG = FeatureConfig()


def hours(seconds: float) -> float:
    return min(NEVER_H, max(0.0, seconds / HOUR))


def age_h(now: int, ts: int | None) -> float:
    return NEVER_H if ts is None else hours(now - ts)


def member_counts(row: Row | None, merchant: str, now: int, window: int) -> tuple[int, int, int]:
    """(all members, members active in window, members who first used it in window) other than merchant."""
    if not row:
        return 0, 0, 0
    members = row.get("m") or {}
    total = active = newcomers = 0
    since = now - window
    registered_here = {r[0] for r in row.get("reg") or ()}
    for other, (first, last) in members.items():
        if other == merchant:
            continue
        total += 1
        if last >= since:
            active += 1
            if first >= since and other not in registered_here:
                newcomers += 1
    return total, active, newcomers


def platform_surge(uow: UnitOfWork, counter: str, now: int, window_h: int = 6) -> float:
    """Platform-wide count over the last window_h hours relative to the busiest same window of the previous
    7 days (1.0 when there is too little history). A promotion lifts every merchant at once."""
    hours = (uow.get(PLATFORM, counter) or {}).get("h") or {}
    hour = now // HOUR

    def window(end: int) -> int:
        return sum(hours.get(str(h), 0) for h in range(end - window_h + 1, end + 1))

    previous = [window(hour - 24 * k) for k in range(1, 8)]
    previous = [p for p in previous if p > 0]
    if len(previous) < 2:
        return 1.0
    return round(window(hour) / max(previous), 3)


def peer_credit_median(uow: UnitOfWork, category: str) -> float:
    """Median credit (fen) of the merchant's peers — its category and kind, as the platform sees them now (0 when fewer
    than 50 credits are known)."""
    sizes = (((uow.get(PLATFORM, "credits") or {}).get("sz") or {}).get(category)) or {}
    total = sum(sizes.values())
    if total < 50:
        return 0.0
    seen = 0
    for bucket in sorted(sizes, key=int):
        seen += sizes[bucket]
        if 2 * seen >= total:
            return float(2 ** ((int(bucket) + 0.5) / SIZE_BUCKETS_PER_DOUBLING))
    return 0.0


def platform_burst_merchants(uow: UnitOfWork, merchant: str, now: int, window_h: int = 3) -> tuple[float, float]:
    """Other merchants paying out in bursts platform-wide in the last window_h hours, and the most seen in the
    same window on any of the previous 7 days (a promotion's instalments show up as many merchants at once)."""
    hours = (uow.get(PLATFORM, "bursts") or {}).get("h") or {}
    hour = now // HOUR

    def count(end: int) -> int:
        seen: set[str] = set()
        for h in range(end - window_h + 1, end + 1):
            seen.update(hours.get(str(h)) or ())
        seen.discard(merchant)
        return len(seen)

    return float(count(hour)), float(max(count(hour - 24 * k) for k in range(1, 8)))


def burst_history_max(times: list[int], before: int, window: int) -> int:
    """The most withdrawals the merchant ever made within one ``window``, counting only withdrawals before
    ``before`` (so the burst being decided does not raise its own bar)."""
    past = [t for t in times if t < before]
    best = start = 0
    for end, t in enumerate(past):
        while past[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def relative_features(
    uow: UnitOfWork, m: Row, event: dict[str, Any], now: int, f: dict[str, float], config: FeatureConfig
) -> dict[str, float]:
    """Signals relative to the context rather than constants (risk-rules-4): the merchant's own history (its
    usual payout, cadence and credit sizes), its peers (the category's credit sizes) and the platform's current
    traffic (a promotion lifts everyone). Each is a ratio or a count against the merchant's own past, so the
    same rule holds on a marketplace whose amounts, rates and windows differ from ours."""
    r: dict[str, float] = {}
    amount = int(event.get("amount") or 0)
    credits = m.get("cr") or []
    withdrawals = m.get("wd") or []

    # Credit sizes: own typical credit (the median of credits older than the recent window), else the peers'.
    recent_since = now - config.recent_credit_h * HOUR
    older = [c[1] for c in credits if c[0] < recent_since]
    recent = [c for c in credits if c[0] >= recent_since]
    peer = peer_credit_median(uow, peer_group(m))
    own = statistics.median(older) if len(older) >= 5 else 0.0
    typical = own or peer
    r["peer_median_credit_yuan"] = round(peer / YUAN, 2)
    r["typical_credit_yuan"] = round(typical / YUAN, 2)
    max_recent = max((c[1] for c in recent), default=0)
    r["recent_max_credit_vs_typical"] = round(max_recent / typical, 3) if typical else 0.0
    all_amounts = [c[1] for c in credits]
    mean_credit = sum(all_amounts) / len(all_amounts) if all_amounts else 0.0
    r["mean_credit_vs_peer"] = round(mean_credit / peer, 3) if peer else 0.0
    r["amount_vs_typical_credit"] = round(amount / typical, 3) if typical else 0.0
    # Money from outsized credits: recent credits at least 5× the typical credit, as a share of this payout.
    outsized = sum(c[1] for c in recent if typical and c[1] >= 5 * typical)
    r["outsized_credit_cover"] = round(outsized / amount, 4) if amount else 0.0

    # Cadence: credits in the last 12 h against the merchant's own rate before then (at least half a day of
    # history counts; less is "no history", rate 0), and the sales those 12 h brought against a usual day.
    since12 = now - 12 * HOUR
    first = m.get("cr_first")
    c12 = [c for c in credits if c[0] >= since12]
    before12 = [c for c in credits if c[0] < since12]
    life_days = (since12 - first) / DAY if first is not None and first < since12 else 0.0
    n_before = max(0, int(m.get("cr_n", 0)) - len(c12))
    sum_before = max(0, int(m.get("cr_sum", 0)) - sum(c[1] for c in c12))
    rate = n_before / max(life_days, 1.0) if life_days >= 0.5 else 0.0
    daily_sum = sum_before / max(life_days, 1.0) if life_days >= 0.5 else 0.0
    r["credits_12h_n"] = float(len(c12))
    r["new_buyer_credits_12h_n"] = float(sum(1 for c in c12 if c[3]))
    r["unseen_buyer_credits_12h_share"] = (
        round(sum(c[1] for c in c12 if c[3] and c[4]) / sum(c[1] for c in c12), 4) if c12 else 0.0
    )
    r["credit_rate_life"] = round(rate, 3)
    r["credits_12h_vs_rate"] = round(len(c12) / max(rate / 2, 0.25), 3)
    r["credits_12h_vs_daily_sales"] = round(sum(c[1] for c in c12) / daily_sum, 3) if daily_sum else 0.0
    r["credit_history_days"] = round(life_days, 2)
    del before12

    # Withdrawal cadence: the burst being decided against the most the merchant ever did in one window before.
    window = config.burst_window_h * HOUR
    times = [w[0] for w in withdrawals]
    burst_start = min((t for t in times if t >= now - window), default=now)
    hist = burst_history_max(times, burst_start, window)
    r["wd_burst_hist_max"] = float(hist)
    r["burst_beyond_history"] = f["wd_burst_n"] + 1 - hist
    r["platform_credit_surge_24h"] = platform_surge(uow, "credits", now, window_h=24)
    others, usual = platform_burst_merchants(uow, str(event["merchant"]), now)
    r["platform_burst_merchants_3h"] = others
    r["platform_burst_surge"] = round((others + 1) / (usual + 1), 3)

    # The usual payout: its median withdrawal (2+), else 5 days of its sales, else 20 typical credits.
    amounts = [w[1] for w in withdrawals]
    if len(amounts) >= 2:
        usual = statistics.median(amounts)
    elif daily_sum:
        usual = 5 * daily_sum
    else:
        usual = 20 * typical
    r["usual_payout_yuan"] = round(usual / YUAN, 2)
    r["amount_vs_usual_payout"] = round(amount / usual, 3) if usual else 0.0
    r["new_access_h"] = min(f["device_age_h"], f["ip_age_h"])

    # Distance below the large-value threshold, as a share of it (-1 at or above it).
    threshold = config.large_value_threshold_fen
    r["threshold_gap"] = (threshold - amount) / threshold if amount < threshold else -1.0  # exact: a boundary
    prior = [w[1] for w in withdrawals if w[0] >= now - 14 * DAY and w[1] < threshold]
    r["near_threshold_prior_20pct_14d"] = float(sum(1 for a in prior if a >= 0.8 * threshold))
    return r


# The raw numbers behind each relative feature: the explanation shows them beside the ratio, so a reviewer
# reads "4.2× its usual payout of 310 yuan", not a bare 4.2.
RAW_CONTEXT: dict[str, tuple[str, ...]] = {
    "amount_vs_usual_payout": ("usual_payout_yuan", "withdrawals_n"),
    "outsized_credit_cover": ("typical_credit_yuan", "peer_median_credit_yuan", "recent_max_credit_yuan"),
    "recent_max_credit_vs_typical": ("typical_credit_yuan", "recent_max_credit_yuan"),
    "amount_vs_typical_credit": ("typical_credit_yuan",),
    "mean_credit_vs_peer": ("peer_median_credit_yuan", "credited_yuan", "credits_n"),
    "credits_12h_vs_rate": ("credits_12h_n", "credit_rate_life", "credit_history_days"),
    "new_buyer_credits_12h_n": ("credits_12h_n",),
    "burst_beyond_history": ("wd_burst_n", "wd_burst_hist_max"),
    "threshold_gap": ("near_threshold_prior_20pct_14d",),
    "new_access_h": ("device_age_h", "ip_age_h"),
    "platform_credit_surge": ("platform_credit_surge_24h", "platform_burst_merchants_3h", "platform_burst_surge"),
}


def compute_features(
    uow: UnitOfWork, event: dict[str, Any], now: int, config: FeatureConfig = DEFAULT_FEATURE_CONFIG
) -> dict[str, float]:
    merchant = str(event["merchant"])
    m = uow.get(MERCHANT, merchant) or {}
    amount = int(event.get("amount") or 0)
    device, ip, card = event.get("device"), event.get("ip"), str(event.get("card") or "")
    threshold = config.large_value_threshold_fen
    f: dict[str, float] = {"amount_yuan": amount / YUAN, "instant": float(event.get("speed") == "instant")}
    local_hour = ((now + 8 * HOUR) % DAY) / HOUR
    f["local_hour"] = round(local_hour, 2)

    # Account and identity.
    reg_ts = m.get("reg_ts")
    f["account_age_h"] = age_h(now, reg_ts if reg_ts is not None else m.get("first_ts"))
    f["registered_seen"] = float(reg_ts is not None)
    f["id_invalid"] = float(m.get("id_ok") is False)

    # Flags from confirmed fraud.
    f["flag_merchant"] = float(bool(m.get("flag")))
    f["linked_to_fraud"] = float(bool(m.get("link")))

    # Credits.
    credits = m.get("cr") or []
    cr_sum, cr_n = m.get("cr_sum", 0), m.get("cr_n", 0)
    wd_sum, wd_n = m.get("wd_sum", 0), m.get("wd_n", 0)
    balance = cr_sum - wd_sum
    f["credited_yuan"] = cr_sum / YUAN
    f["credits_n"] = float(cr_n)
    f["balance_yuan"] = balance / YUAN
    f["drain_share"] = round(amount / balance, 4) if balance > 0 else 1.0
    f["withdrawn_share"] = round((wd_sum + amount) / cr_sum, 4) if cr_sum > 0 else 1.0
    f["first_credit_age_h"] = age_h(now, m.get("cr_first"))
    f["buyers_n"] = float(m.get("buyers", 0))
    f["credits_per_buyer"] = round(cr_n / max(1, m.get("buyers", 0)), 3)
    f["exclusive_buyer_share"] = round(m.get("cr_excl", 0) / cr_sum, 4) if cr_sum else 0.0
    f["new_buyer_share_life"] = round(m.get("cr_gnew", 0) / cr_sum, 4) if cr_sum else 0.0

    recent_since = now - config.recent_credit_h * HOUR
    recent = [c for c in credits if c[0] >= recent_since]
    older = [c for c in credits if c[0] < recent_since]
    r_sum = sum(c[1] for c in recent)
    f["credits_6h_n"] = float(sum(1 for c in recent if c[0] >= now - 6 * HOUR))
    f["credits_24h_n"] = float(sum(1 for c in recent if c[0] >= now - 24 * HOUR))
    day = [c for c in recent if c[0] >= now - DAY]
    day_sum = sum(c[1] for c in day)
    f["credits_24h_yuan"] = day_sum / YUAN
    f["new_buyers_24h_n"] = float(sum(1 for c in day if c[2]))
    f["new_buyer_share_24h"] = round(sum(c[1] for c in day if c[2]) / day_sum, 4) if day_sum else 0.0
    f["credits_recent_yuan"] = r_sum / YUAN
    f["credits_recent_n"] = float(len(recent))
    f["recent_new_buyer_share"] = round(sum(c[1] for c in recent if c[2]) / r_sum, 4) if r_sum else 0.0
    f["recent_unseen_buyer_share"] = round(sum(c[1] for c in recent if c[3]) / r_sum, 4) if r_sum else 0.0
    f["recent_exclusive_share"] = round(sum(c[1] for c in recent if c[4]) / r_sum, 4) if r_sum else 0.0
    f["recent_new_buyers_n"] = float(sum(1 for c in recent if c[2]))
    f["recent_flagged_buyer_share"] = round(sum(c[1] for c in recent if c[5]) / r_sum, 4) if r_sum else 0.0
    first_credit = m.get("cr_first")
    history_days = (recent_since - first_credit) / DAY if first_credit is not None else 0.0
    older_sum = cr_sum - r_sum
    daily = older_sum / history_days if history_days >= 2 else 0.0
    f["history_days"] = round(max(0.0, history_days), 2)
    f["daily_credit_yuan"] = round(daily / YUAN, 2)
    f["credit_surge_24h"] = round(f["credits_24h_yuan"] * YUAN / daily, 3) if daily > 0 else 0.0
    rate = (cr_n - len(recent)) / history_days if history_days >= 2 else 0.0
    f["credit_rate_per_day"] = round(rate, 3)
    f["credit_count_surge_6h"] = round(f["credits_6h_n"] / max(rate / 4, 0.25), 3) if rate > 0 else 0.0
    f["platform_credit_surge"] = platform_surge(uow, "credits", now)
    f["recent_max_credit_yuan"] = max((c[1] for c in recent), default=0) / YUAN
    f["recent_credit_share"] = round(r_sum / cr_sum, 4) if cr_sum else 0.0
    f["recent_max_credit_share"] = round(f["recent_max_credit_yuan"] * YUAN / amount, 4) if amount else 0.0
    f["credit_cover_24h"] = round(f["credits_24h_yuan"] * YUAN / amount, 4) if amount else 0.0
    older_amounts = [c[1] for c in older]
    if len(older_amounts) >= 2 and recent:
        median_credit = statistics.median(older_amounts)
        f["recent_max_credit_vs_median"] = round(max(c[1] for c in recent) / max(median_credit, 1), 3)
    else:
        f["recent_max_credit_vs_median"] = 0.0

    # Withdrawals.
    withdrawals = m.get("wd") or []
    f["withdrawals_n"] = float(wd_n)
    amounts = [w[1] for w in withdrawals]
    if amounts:
        median_wd = statistics.median(amounts)
        ordered = sorted(amounts)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        f["wd_median_yuan"] = median_wd / YUAN
        f["wd_p90_yuan"] = p90 / YUAN
        f["amount_vs_median"] = round(amount / max(median_wd, 1), 3)
        f["amount_vs_p90"] = round(amount / max(p90, 1), 3)
        f["last_wd_age_h"] = age_h(now, withdrawals[-1][0])
    else:
        f["wd_median_yuan"] = f["wd_p90_yuan"] = 0.0
        f["amount_vs_median"] = f["amount_vs_p90"] = 0.0
        f["last_wd_age_h"] = NEVER_H
    f["amount_vs_daily_credit"] = round(amount / daily, 3) if daily > 0 else 0.0
    # The merchant's usual payout: its median withdrawal, else five days of its usual sales.
    usual = statistics.median(amounts) if amounts else 5 * daily
    f["amount_vs_usual"] = round(amount / usual, 3) if usual > 0 else 0.0
    burst_since = now - config.burst_window_h * HOUR
    f["wd_1h_n"] = float(sum(1 for w in withdrawals if w[0] >= now - HOUR))
    f["wd_burst_n"] = float(sum(1 for w in withdrawals if w[0] >= burst_since))
    f["wd_24h_n"] = float(sum(1 for w in withdrawals if w[0] >= now - DAY))
    f["wd_burst_max_before"] = float(m.get("burst_max", 0))
    f["burst_excess"] = f["wd_burst_n"] + 1 - f["wd_burst_max_before"]
    f["intercepted_24h_n"] = float(sum(1 for w in withdrawals if w[0] >= now - DAY and w[4]))
    f["wd_per_day"] = round(wd_n / history_days, 3) if history_days >= 2 else 0.0

    # Large-value threshold.
    low = threshold * (1 - config.near_threshold_band)
    f["near_threshold"] = float(low <= amount < threshold)
    f["near_threshold_prior_14d"] = float(
        sum(1 for w in withdrawals if w[0] >= now - 14 * DAY and low <= w[1] < threshold)
    )
    f["over_threshold"] = float(amount >= threshold)

    # Device, IP, network: how long this merchant has used them, and who else does.
    f["device_age_h"] = age_h(now, ((m.get("dev") or {}).get(device) or [None])[0])
    f["ip_age_h"] = age_h(now, ((m.get("ip") or {}).get(ip) or [None])[0])
    net = net24(ip)
    f["net_age_h"] = age_h(now, ((m.get("net") or {}).get(net) or [None])[0])
    f["devices_n"] = float(len(m.get("dev") or {}))
    window = config.cluster_window_h * HOUR
    d_row, ip_row, net_row = uow.get(DEVICE, device), uow.get(IP, ip), uow.get(NET24, net)
    total, active, newcomers = member_counts(d_row, merchant, now, window)
    f["device_other_merchants"] = float(total)
    f["device_other_active"] = float(active)
    regs = (d_row or {}).get("reg") or []
    f["device_registrations"] = float(len(regs))
    f["device_reg_span_h"] = hours(regs[-1][1] - regs[0][1]) if len(regs) > 1 else 0.0
    f["registered_on_device"] = float(any(r[0] == merchant for r in regs))
    total, active, newcomers = member_counts(ip_row, merchant, now, window)
    f["ip_other_merchants"] = float(total)
    f["ip_other_active"] = float(active)
    f["ip_newcomers"] = float(newcomers)
    f["ip_registrations"] = float(len((ip_row or {}).get("reg") or []))
    total, active, newcomers = member_counts(net_row, merchant, now, window)
    f["net_other_active"] = float(active)
    f["net_newcomers"] = float(newcomers)
    f["flag_device"] = float(bool((d_row or {}).get("flag")))
    f["flag_ip"] = float(bool((ip_row or {}).get("flag")))
    f["flag_net"] = float(bool((net_row or {}).get("flag")))

    # Card.
    card_info = (m.get("cards") or {}).get(card) or {}
    card_row = uow.get(CARD, card) or {}
    f["card_known"] = float(bool(card_info))
    f["card_age_h"] = age_h(now, card_info.get("ts"))
    f["card_name_mismatch"] = float(bool(card_info) and not card_info.get("match", True))
    f["card_same_surname"] = float(bool(card_info.get("surname")))
    f["card_is_additional"] = float(card_info.get("n", 0) > 0)
    f["card_bound_on_new_device"] = float(bool(card_info) and card_info.get("dev_age", 0) < DAY)
    f["card_other_merchants"] = float(max(0, len(card_row.get("m") or []) - 1))
    f["flag_card"] = float(bool(card_row.get("flag")))
    f["cards_n"] = float(len(m.get("cards") or {}))

    # Phone, dormancy.
    f["phone_change_age_h"] = age_h(now, m.get("phone_ts"))
    react_ts = m.get("react_ts")
    recent_react = react_ts is not None and now - react_ts <= config.reactivation_window_d * DAY
    f["dormant_gap_d"] = float(m.get("gap_d", 0.0)) if recent_react else 0.0
    f["reactivation_age_h"] = age_h(now, react_ts) if recent_react else NEVER_H
    if recent_react:
        dev_first = ((m.get("dev") or {}).get(device) or [now])[0]
        ip_first = ((m.get("ip") or {}).get(ip) or [now])[0]
        f["device_new_since_reactivation"] = float(dev_first >= react_ts)
        f["ip_new_since_reactivation"] = float(ip_first >= react_ts)
        f["reactivated_on_new_device"] = float(bool(m.get("react_new_dev")))
        f["reactivated_on_new_ip"] = float(bool(m.get("react_new_ip")))
    else:
        f["device_new_since_reactivation"] = f["ip_new_since_reactivation"] = 0.0
        f["reactivated_on_new_device"] = f["reactivated_on_new_ip"] = 0.0

    f.update(list_features(event.get("list_hits") or ()))
    f.update(relative_features(uow, m, event, now, f, config))
    return f


# High-risk list entries that only add score: the learning loop lists shared IPs / devices on a count alone,
# which ordinary shared offices also produce, so such a hit must never decide by itself.
SCORE_ONLY_SOURCES = frozenset({"learning_loop"})


def list_features(hits: Any) -> dict[str, float]:
    """Features from the high-risk list entries the caller found for this withdrawal's device, IP, card and the
    merchant's phone and identity number (``event["list_hits"]``: ``[{"kind", "source"}, ...]``)."""
    strong = {h.get("kind") for h in hits if h.get("source") not in SCORE_ONLY_SOURCES}
    return {
        "list_device_card_id": float(bool(strong & {"device", "card", "id_number"})),
        "list_phone": float("phone" in strong),
        "list_ip": float("ip" in strong),
        "list_learning_n": float(sum(1 for h in hits if h.get("source") in SCORE_ONLY_SOURCES)),
    }
