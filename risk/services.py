"""Risk services: observe events, decide on withdrawals, take feedback and labels.

The decision code is ``risk.engine`` (features → rules as data + a learned score → allow / step_up / review /
block, with an explanation); here it runs over the RiskState table, inside the caller's transaction, so the
live path and the replay command use exactly the same code. The engine is built from the active
:class:`~risk.models.RuleSetVersion` (else the shipped default), the shadow one if any, and the active
:class:`~risk.models.ModelVersion` (else the shipped artifact); a built engine is reused until those change
(checked every few seconds, and at once in the process that activates a version).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.identity import id_number_valid
from config.crypto import is_pii_hash, pii_hash

from .contract import RiskDecision
from .engine import DEFAULT_RULESET, RiskEngine, model_from_dict, ruleset_from_dict, state
from .engine.engine import DEFAULT
from .engine.recorder import net24
from .engine.state import MERCHANT
from .models import ModelVersion, RiskDecisionLog, RiskLabel, RiskListEntry, RiskState, RuleSetVersion
from .store import DbStore

T = TypeVar("T")
CONFIG_CHECK_SECONDS = 10.0

# --- the engine and its configuration ---------------------------------------------------------------------
_cache: dict[str, Any] = {"engine": None, "stamp": None, "checked": 0.0}


def _config_stamp() -> tuple[Any, ...]:
    """What the engine is built from: active / shadow rule set and active model (ids and update times)."""
    rulesets = tuple(
        RuleSetVersion.objects.filter(status__in=[RuleSetVersion.Status.ACTIVE, RuleSetVersion.Status.SHADOW])
        .order_by("status")
        .values_list("pk", "status", "updated_at")
    )
    model = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("pk", flat=True).first()
    return rulesets, model


def risk_engine_build() -> RiskEngine:
    active = RuleSetVersion.objects.filter(status=RuleSetVersion.Status.ACTIVE).first()
    shadow = RuleSetVersion.objects.filter(status=RuleSetVersion.Status.SHADOW).first()
    model_row = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    return RiskEngine(
        DbStore(),
        ruleset=ruleset_from_dict(active.rules) if active else DEFAULT_RULESET,
        shadow_ruleset=ruleset_from_dict(shadow.rules) if shadow else None,
        model=model_from_dict(model_row.artifact) if model_row else DEFAULT,
    )


def risk_engine_current() -> RiskEngine:
    """The engine in use: rebuilt when the rules, lists or model change (checked every CONFIG_CHECK_SECONDS)."""
    now = time.monotonic()
    engine = _cache["engine"]
    if engine is None or now - _cache["checked"] > CONFIG_CHECK_SECONDS:
        stamp = _config_stamp()
        if engine is None or stamp != _cache["stamp"]:
            engine = risk_engine_build()
            _cache.update(engine=engine, stamp=stamp)
        _cache["checked"] = now
    return engine


def risk_engine_reset() -> None:
    """Forget the cached engine (after activating another rule set or model version)."""
    _cache.update(engine=None, stamp=None, checked=0.0)


# --- personal numbers become link keys -------------------------------------------------------------------
# The engine links merchants by equal values; a keyed hash keeps that equality without the number itself, so
# RiskState keys and rows, list entries and explanations never hold a card, phone or identity number. The
# purposes are those of the hash columns (PayoutAccount.account_number_hash, KycRecord.phone_hash /
# id_number_hash), so a link key finds its account or KYC record.
LINK_KEY_PURPOSE = {"card": "account", "phone": "phone", "id_number": "id_number"}
LIST_KIND_PURPOSE = {"card": "account", "phone": "phone", "id_number": "id_number"}


def risk_link_key(*, kind: str, value: str) -> str:
    """The key under which risk knows a card (``card``), phone (``phone``) or identity number (``id_number``)."""
    value = str(value or "").strip()
    if not value or is_pii_hash(value):
        return value
    if kind == "id_number":
        value = value.upper()
    return pii_hash(LINK_KEY_PURPOSE[kind], value)


def risk_event_pseudonymise(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the engine may keep it: numbers replaced by link keys; the identity number's check-character
    validity (a feature) is computed first."""
    out = dict(event)
    raw_id = str(event.get("id_number") or "")
    if raw_id and not is_pii_hash(raw_id) and "id_number_valid" not in out:
        out["id_number_valid"] = id_number_valid(raw_id)
    for field in LINK_KEY_PURPOSE:
        if out.get(field):
            out[field] = risk_link_key(kind=field, value=str(out[field]))
    return out


def _rows_for(event: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The state rows handling ``event`` reads (read together in one query; the engine may read more)."""
    merchant = str(event.get("merchant") or "")
    etype = event.get("type")
    rows: list[tuple[str, str | None]] = [(state.MERCHANT, merchant)]
    if etype == "sale_credited":
        return [*rows, (state.BUYER, str(event.get("buyer") or "")), (state.PLATFORM, "credits")]
    if etype == "fraud_confirmed":
        return [*rows, (state.WITHDRAWAL, str(event.get("withdrawal") or ""))]
    ip = event.get("ip")
    rows += [(state.DEVICE, event.get("device")), (state.IP, ip), (state.NET24, net24(ip))]
    if etype == "withdrawal_requested":
        rows += [(state.CARD, str(event.get("card") or "")), (state.PLATFORM, "credits"), (state.PLATFORM, "bursts")]
    elif etype == "bank_card_bound":
        rows.append((state.CARD, str(event.get("card") or "")))
    elif etype in ("phone_changed", "merchant_registered"):
        rows.append((state.PHONE, event.get("phone")))
    return rows


def _run(fn: Callable[[RiskEngine], T], event: dict[str, Any] | None = None) -> T:
    """Run one engine call and write what it learnt in one statement; nothing is kept if it fails."""
    engine = risk_engine_current()
    store = engine.store
    assert isinstance(store, DbStore)
    try:
        if event is not None:
            store.prefetch(_rows_for(event))
        result = fn(engine)
        store.flush()
    except BaseException:
        store.discard()
        raise
    return result


# --- events -----------------------------------------------------------------------------------------------
def risk_observe(*, event: dict[str, Any]) -> None:
    """Record a non-withdrawal event (registration, login, phone change, card bound, sale credited). Every
    merchant event of accounts and wallets comes here (``RiskConfig.ready()`` listens to ``accounts.hooks``)."""
    event = risk_event_pseudonymise(event)
    _run(lambda engine: engine.observe(event), event)


def _parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def risk_list_hits(*, values: dict[str, str | None], now: datetime) -> list[dict[str, Any]]:
    """Active (not expired) high-risk list entries for the given ``{kind: value}``."""
    match = Q()
    for kind, value in values.items():
        if value:
            match |= Q(kind=kind, value=value)
    if not match:
        return []
    entries = RiskListEntry.objects.filter(match).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return [
        {"kind": kind, "value": value, "source": source, "reason": reason, "id": pk}
        for pk, kind, value, source, reason in entries.values_list("pk", "kind", "value", "source", "reason")
    ]


def _decide(engine: RiskEngine, event: dict[str, Any], withdrawal_id: int | None) -> RiskDecision:
    now = _parse_ts(event["ts"])
    m = engine.store.get(MERCHANT, str(event["merchant"])) or {}
    hits = risk_list_hits(
        values={
            RiskListEntry.Kind.IP: event.get("ip"),
            RiskListEntry.Kind.DEVICE: event.get("device"),
            RiskListEntry.Kind.CARD: str(event.get("card") or ""),
            RiskListEntry.Kind.PHONE: m.get("phone"),
            RiskListEntry.Kind.ID_NUMBER: m.get("idn"),
        },
        now=now,
    )
    assessment = engine.assess({**event, "list_hits": hits})
    decision = assessment.decision
    if hits:
        decision.explanation["list_hits"] = hits
    decision.explanation["withdrawal_ref"] = str(event.get("withdrawal") or "")
    RiskDecisionLog.objects.create(
        withdrawal_ref=str(event.get("withdrawal") or ""),
        withdrawal_id=withdrawal_id,
        merchant_ref=str(event["merchant"]),
        ts=now,
        outcome=decision.outcome,
        score=decision.score,
        ruleset_version=engine.ruleset.version,
        model_version=engine.model.version if engine.model is not None else "",
        shadow_outcome=assessment.shadow.outcome if assessment.shadow is not None else "",
        ip=str(event.get("ip") or "")[:64],
        device=str(event.get("device") or "")[:128],
        features=assessment.features,
    )
    return decision


def risk_assess_withdrawal(*, event: dict[str, Any]) -> RiskDecision:
    """Decide on a withdrawal request and remember it (state, and a decision log row with every feature).

    The caller may put its own withdrawal id in ``event["platform_id"]``; the engine never sees it."""
    event = risk_event_pseudonymise(event)
    withdrawal_id = event.pop("platform_id", None)
    return _run(lambda engine: _decide(engine, event, withdrawal_id), event)


# --- feedback and labels ----------------------------------------------------------------------------------
FRAUD_LIST_DAYS = {"device": 180, "card": 365, "ip": 30}


def risk_label_record(
    *, withdrawal_ref: str, merchant_ref: str = "", fraud: bool, source: str, now: datetime | None = None
) -> RiskLabel:
    """A labelled outcome for training, joined with the feature vector the decision was made on. One label per
    (withdrawal, source); a later one of the same source replaces the verdict."""
    log = RiskDecisionLog.objects.filter(withdrawal_ref=withdrawal_ref).order_by("-pk").first()
    features = log.features if log is not None else {}
    merchant_ref = merchant_ref or (log.merchant_ref if log is not None else "")
    label, _ = RiskLabel.objects.update_or_create(
        withdrawal_ref=withdrawal_ref,
        source=source,
        defaults={"merchant_ref": merchant_ref, "fraud": fraud, "features": features},
    )
    return label


def risk_feedback(*, withdrawal_ref: str, merchant_ref: str, ts: str) -> None:
    """Confirmed fraud on an earlier withdrawal: the engine lists what the fraudster used and links sharers;
    the label feeds the next model training. (The learning loop also puts the device, card and IP on the
    high-risk list, with an expiry.)"""
    event = {"type": "fraud_confirmed", "ts": ts, "merchant": merchant_ref, "withdrawal": withdrawal_ref}
    _run(lambda engine: engine.feedback(event), event)
    try:
        with transaction.atomic():
            risk_label_record(
                withdrawal_ref=withdrawal_ref,
                merchant_ref=merchant_ref,
                fraud=True,
                source=RiskLabel.Source.FRAUD_CONFIRMED,
            )
    except IntegrityError:  # the same confirmation twice
        pass


def risk_list_add(
    *,
    kind: str,
    value: str,
    reason: str,
    source: str = RiskListEntry.Source.MANUAL,
    expires_at: datetime | None = None,
    created_by: Any = None,
    now: datetime | None = None,
) -> RiskListEntry:
    """List a value, or extend the open entry of the same kind, value and source (never shortening it)."""
    if kind not in RiskListEntry.Kind.values or not value:
        raise ValueError(f"bad list entry {kind}:{value}")
    if kind in LIST_KIND_PURPOSE:  # listed by link key, never by the number itself
        value = risk_link_key(kind=kind, value=value)
    now = now or timezone.now()
    entry = (
        RiskListEntry.objects.filter(kind=kind, value=value, source=source)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if entry is None:
        return RiskListEntry.objects.create(
            kind=kind, value=value, reason=reason[:255], source=source, expires_at=expires_at, created_by=created_by
        )
    if entry.expires_at is not None and (expires_at is None or expires_at > entry.expires_at):
        entry.expires_at = expires_at
        entry.reason = reason[:255]
        entry.save(update_fields=["expires_at", "reason"])
    return entry


def risk_fraud_lists_apply(*, withdrawal_ref: str, now: datetime) -> list[RiskListEntry]:
    """Put the device, card and IP of a confirmed-fraud withdrawal on the high-risk list, with expiries."""
    row = RiskState.objects.filter(kind="withdrawal", key=withdrawal_ref).values_list("data", flat=True).first() or {}
    made = []
    for kind, key in (("device", row.get("dev")), ("card", row.get("card")), ("ip", row.get("ip"))):
        if key:
            made.append(
                risk_list_add(
                    kind=kind,
                    value=str(key),
                    reason=f"confirmed fraud on withdrawal {withdrawal_ref}",
                    source=RiskListEntry.Source.FRAUD_FEEDBACK,
                    expires_at=now + timedelta(days=FRAUD_LIST_DAYS[kind]),
                    now=now,
                )
            )
    return made
