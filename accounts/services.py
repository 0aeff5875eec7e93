from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumError

from config.crypto import pii_hash
from config.errors import DomainError
from config.pii import mask_id_number, mask_phone

from .hooks import merchant_event_publish, merchant_fraud_recorded, merchant_opened_publish
from .identity import id_number_valid, normalise_name
from .kyc import KycProviderError, KycResult, kyc_provider
from .models import ApiKey, AuditEvent, KycRecord, Merchant, MerchantTier, Notification, PayoutAccount, User

log = logging.getLogger(__name__)


# Province-level codes of GB/T 2260. County codes change every year, so only the province is checked: a stale
# county table would refuse real people.
PROVINCE_CODES = frozenset(
    {
        11,
        12,
        13,
        14,
        15,
        21,
        22,
        23,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        41,
        42,
        43,
        44,
        45,
        46,
        50,
        51,
        52,
        53,
        54,
        61,
        62,
        63,
        64,
        65,
        71,
        81,
        82,
    }
)


def names_match(a: str, b: str) -> bool:
    """Names compare without spaces (ASCII or full-width) and in NFKC form: '张 三' is '张三'."""
    return bool(normalise_name(a)) and normalise_name(a) == normalise_name(b)


def id_number_validate(id_number: str) -> str:
    """A resident identity number (GB 11643-1999): check character, a real birth date, a known province."""
    value = (id_number or "").strip().upper()
    if not id_number_valid(value):
        raise DomainError("invalid_id_number", details={"id_number": "wrong length or check character"})
    if int(value[:2]) not in PROVINCE_CODES:
        raise DomainError("invalid_id_number", details={"id_number": "unknown region"})
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise DomainError("invalid_id_number", details={"id_number": "not a real birth date"})
    if not date(1900, 1, 1) <= birth <= timezone.localdate():
        raise DomainError("invalid_id_number", details={"id_number": "birth date out of range"})
    return value


def card_number_validate(number: str) -> str:
    digits = "".join(number.split())
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise DomainError("invalid_card_number", details={"card": "must be 12 to 19 digits"})
    try:
        return str(luhn.validate(digits))
    except StdnumError:
        raise DomainError("invalid_card_number", details={"card": "failed the Luhn check"})


def _event(merchant: Merchant, type_: str, **fields: Any) -> dict[str, Any]:
    ts = fields.pop("ts", None) or timezone.now()
    return {
        "type": type_,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(ts, "strftime") else ts,
        "merchant": merchant.risk_subject,
        **fields,
    }


@dataclass(frozen=True)
class Registration:
    merchant: Merchant
    user: User | None


def merchant_register(
    *,
    name: str,
    kind: str = Merchant.Kind.INDIVIDUAL,
    category: str = Merchant.Category.GAME_CARDS,
    real_name: str,
    id_number: str,
    phone: str,
    username: str | None = None,
    password: str | None = None,
    external_ref: str = "",
    ip: str = "",
    device: str = "",
    validate_id: bool = True,
    now: Any = None,
) -> Registration:
    """A merchant, its wallet, its KYC record (pending) and optionally its first user.

    ``validate_id=False`` records an ID number as given (the replay of historical data does this: a bad
    check digit is a risk signal there, not a reason to lose the event)."""
    if kind not in Merchant.Kind.values or category not in Merchant.Category.values:
        raise DomainError("invalid_request", details={"kind": kind, "category": category})
    id_number = id_number_validate(id_number) if validate_id else id_number.strip().upper()
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, kind=kind, category=category, external_ref=external_ref)
        KycRecord.objects.create(merchant=merchant, real_name=real_name, id_number=id_number, phone=phone)
        merchant_opened_publish(merchant_id=merchant.pk)  # wallets opens its ledger accounts
        user = None
        if username:
            user = User.objects.create_user(username=username, password=password, merchant=merchant)
            group = Group.objects.filter(name="merchant").first()
            if group:
                user.groups.add(group)
        merchant_event_publish(
            event=_event(
                merchant,
                "merchant_registered",
                ts=now,
                kind=kind,
                category=category,
                name=real_name,
                id_number=id_number,
                phone=phone,
                ip=ip,
                device=device,
            )
        )
    return Registration(merchant=merchant, user=user)


def _provider_call(check: Any) -> KycResult:
    try:
        return check()
    except KycProviderError as exc:
        # Transient: the merchant may simply try again; permanent: support has to look at it.
        code = "kyc_mismatch" if exc.permanent else "kyc_provider_unavailable"
        raise DomainError(code, details={"provider_error": str(exc), "retry": not exc.permanent}) from None


def kyc_verify(*, merchant: Merchant, level: int = 2, card: str = "", now: datetime | None = None) -> KycRecord:
    """Verify the merchant's identity through the KYC provider.

    Level 1 is the real-name check (name + identity number). Level 2 adds the bank-card four elements (name,
    identity number, card, phone) on ``card`` or, if none is given, the merchant's bank card in its KYC name;
    without such a card yet the record stays at level 1 and reaches level 2 when one is bound
    (``payout_account_add``). A real-name mismatch marks the record rejected and raises kyc_required."""
    now = now or timezone.now()
    with transaction.atomic():
        kyc = KycRecord.objects.select_for_update().get(merchant=merchant)
        id_number_validate(kyc.id_number)
        provider = kyc_provider()
        result = _provider_call(lambda: provider.verify_real_name(kyc.real_name, kyc.id_number))
        kyc.provider, kyc.provider_ref = result.provider, result.request_id
        if not result.matched:
            kyc.status, kyc.level = KycRecord.Status.REJECTED, 0
            kyc.save(update_fields=["status", "level", "provider", "provider_ref"])
        else:
            kyc.status = KycRecord.Status.VERIFIED
            kyc.level = max(kyc.level, 1)
            kyc.verified_at = kyc.verified_at or now
            kyc.save(update_fields=["status", "level", "verified_at", "provider", "provider_ref"])
            if level >= 2:
                if not card:
                    own = [
                        a
                        for a in merchant.payout_accounts.filter(
                            kind=PayoutAccount.Kind.BANK_CARD, status=PayoutAccount.Status.ACTIVE
                        ).order_by("-is_default", "pk")
                        if names_match(a.holder_name, kyc.real_name)
                    ]
                    card = own[0].account_number if own else ""
                if card:
                    _four_elements(kyc, card)
            merchant_tier_refresh(merchant=merchant, now=now)
    if not result.matched:
        raise DomainError(
            "kyc_mismatch",
            details={"real_name": "the provider did not confirm the name and identity number", **_flags(result)},
        )
    return kyc


def _flags(result: KycResult) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "name_match": result.name_match,
            "id_number_match": result.id_number_match,
            "card_match": result.card_match,
            "phone_match": result.phone_match,
        }.items()
        if v is not None
    }


def _four_elements(kyc: KycRecord, card: str) -> bool:
    """Level 2 if the provider confirms name, identity number, card and phone together (kyc is locked)."""
    provider = kyc_provider()
    try:
        result = provider.verify_four_elements(kyc.real_name, kyc.id_number, card, kyc.phone)
    except KycProviderError as exc:
        log.warning("four-element check of merchant %s failed: %s", kyc.merchant_id, exc)
        return False
    if not result.matched:
        return False
    kyc.level, kyc.four_elements_card = 2, card
    kyc.provider, kyc.provider_ref = result.provider, result.request_id
    kyc.save(update_fields=["level", "four_elements_card", "provider", "provider_ref"])
    return True


# --- tiers ------------------------------------------------------------------------------------------------
YUAN = 100
# Seeded when the table is empty (a fresh database, a flushed test database); edited in the admin afterwards.
DEFAULT_TIERS: list[dict[str, Any]] = [
    dict(code="basic", name="基础", rank=1, min_kyc_level=1, per_payout_limit=5_000 * YUAN,
         daily_limit=20_000 * YUAN, monthly_limit=100_000 * YUAN),
    dict(code="standard", name="标准", rank=2, min_kyc_level=2, per_payout_limit=100_000 * YUAN,
         daily_limit=200_000 * YUAN, monthly_limit=2_000_000 * YUAN),
    dict(code="silver", name="银牌", rank=3, min_kyc_level=2, min_account_age_days=30,
         min_settled_volume=500_000 * YUAN, require_clean_history=True, per_payout_limit=200_000 * YUAN,
         daily_limit=500_000 * YUAN, monthly_limit=5_000_000 * YUAN),
    dict(code="gold", name="金牌", rank=4, min_kyc_level=2, min_account_age_days=180,
         min_settled_volume=5_000_000 * YUAN, require_clean_history=True, per_payout_limit=500_000 * YUAN,
         daily_limit=2_000_000 * YUAN, monthly_limit=20_000_000 * YUAN),
]  # fmt: skip
CLEAN_HISTORY_DAYS = 180


def tiers_active() -> list[MerchantTier]:
    """Active tiers by rank; the defaults are seeded into an empty table. Not cached: admin edits (and test
    database flushes) take effect at once, and it is one small query."""
    tiers = list(MerchantTier.objects.filter(active=True).order_by("rank"))
    if not tiers and not MerchantTier.objects.exists():
        for spec in DEFAULT_TIERS:
            MerchantTier.objects.get_or_create(code=spec["code"], defaults=spec)
        tiers = list(MerchantTier.objects.filter(active=True).order_by("rank"))
    return tiers


def merchant_history_clean(*, merchant: Merchant, now: datetime) -> bool:
    """No confirmed fraud and no review rejection recorded against the merchant recently."""
    since = now - timedelta(days=CLEAN_HISTORY_DAYS)
    return not merchant_fraud_recorded(merchant_ref=merchant.risk_subject, since=since)


def merchant_tier_compute(*, merchant: Merchant, now: datetime | None = None) -> MerchantTier | None:
    """The highest active tier the merchant qualifies for (None without verified KYC)."""
    now = now or timezone.now()
    kyc = KycRecord.objects.filter(merchant=merchant).only("status", "level").first()
    level = kyc.level if kyc is not None and kyc.status == KycRecord.Status.VERIFIED else 0
    age_days = max(0.0, (now - merchant.created_at).total_seconds() / 86_400) if merchant.created_at else 0.0
    clean: bool | None = None
    for tier in reversed(tiers_active()):
        if level < tier.min_kyc_level or age_days < tier.min_account_age_days:
            continue
        if merchant.settled_volume < tier.min_settled_volume:
            continue
        if tier.require_clean_history:
            if clean is None:
                clean = merchant_history_clean(merchant=merchant, now=now)
            if not clean:
                continue
        return tier
    return None


def merchant_tier_refresh(*, merchant: Merchant, now: datetime | None = None) -> MerchantTier | None:
    """Put the merchant in the tier it qualifies for now: upgrades as KYC, age and sales grow, downgrades when
    KYC is withdrawn or the history stops being clean. Saved with history only when it changes."""
    now = now or timezone.now()
    tier = merchant_tier_compute(merchant=merchant, now=now)
    if (tier is not None and merchant.tier_id == tier.pk) or (tier is None and merchant.tier_id is None):
        return tier
    merchant.tier = tier
    merchant.tier_updated_at = now
    merchant.save(update_fields=["tier", "tier_updated_at"])
    return tier


def merchant_tiers_refresh_all(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic job: re-evaluate every active merchant (age passes thresholds without any event)."""
    now = now or timezone.now()
    changed = seen = 0
    for merchant in Merchant.objects.filter(status=Merchant.Status.ACTIVE).iterator(chunk_size=500):
        before = merchant.tier_id
        seen += 1
        with transaction.atomic():
            merchant_tier_refresh(merchant=merchant, now=now)
        changed += merchant.tier_id != before
    return {"merchants": seen, "changed": changed}


def merchant_sale_volume_add(*, merchant_id: int, amount: int, now: datetime) -> None:
    """A settled sale adds to the merchant's volume; the tier is re-evaluated only when the volume just crossed
    a higher tier's threshold (cheap enough for every sale). Called by wallets in the sale's transaction."""
    if amount <= 0:
        return
    with transaction.atomic():
        # The UPDATE's row lock holds until the sale's transaction ends, so the volume read back is ours.
        if not Merchant.objects.filter(pk=merchant_id).update(settled_volume=F("settled_volume") + amount):
            return
        volume = Merchant.objects.filter(pk=merchant_id).values_list("settled_volume", flat=True).get()
        crossed = MerchantTier.objects.filter(
            active=True, min_settled_volume__gt=volume - amount, min_settled_volume__lte=volume
        ).exists()
        if crossed:
            merchant_tier_refresh(merchant=Merchant.objects.get(pk=merchant_id), now=now)


def payout_account_add(
    *,
    merchant: Merchant,
    kind: str = PayoutAccount.Kind.BANK_CARD,
    account_number: str,
    holder_name: str,
    bank_code: str = "",
    make_default: bool = False,
    ip: str = "",
    device: str = "",
    now: Any = None,
) -> PayoutAccount:
    """Bind a payout account. Binding a card in another name is recorded (risk sees it) but it can never
    receive money: withdrawals to it fail with card_name_mismatch."""
    if kind not in PayoutAccount.Kind.values:
        raise DomainError("invalid_request", details={"kind": kind})
    number = card_number_validate(account_number) if kind == PayoutAccount.Kind.BANK_CARD else account_number.strip()
    if not number or not holder_name.strip():
        raise DomainError("invalid_request", details={"account": "number and holder name are required"})
    with transaction.atomic():
        account, _created = PayoutAccount.objects.get_or_create(
            merchant=merchant,
            kind=kind,
            account_number_hash=pii_hash("account", number),
            defaults={"account_number": number, "holder_name": holder_name.strip(), "bank_code": bank_code},
        )
        if make_default or not merchant.payout_accounts.filter(is_default=True).exists():
            merchant.payout_accounts.exclude(pk=account.pk).update(is_default=False)
            account.is_default = True
            account.save(update_fields=["is_default"])
        if kind == PayoutAccount.Kind.BANK_CARD:
            _four_elements_on_bind(merchant=merchant, card=number, holder_name=holder_name, now=now)
        merchant_event_publish(
            event=_event(
                merchant,
                "bank_card_bound",
                ts=now,
                card=number,
                holder_name=holder_name,
                bank=bank_code,
                ip=ip,
                device=device,
            )
        )
    return account


def _four_elements_on_bind(*, merchant: Merchant, card: str, holder_name: str, now: Any) -> None:
    """A card in the KYC name bound by a real-name-verified merchant completes the four-element check."""
    kyc = KycRecord.objects.select_for_update().filter(merchant=merchant).first()
    if kyc is None or kyc.status != KycRecord.Status.VERIFIED or kyc.level >= 2:
        return
    if names_match(holder_name, kyc.real_name) and _four_elements(kyc, card):
        merchant_tier_refresh(merchant=merchant, now=now if isinstance(now, datetime) else None)


def payout_account_check_receivable(*, account: PayoutAccount, merchant: Merchant) -> None:
    """Raises unless money may be sent to ``account`` for ``merchant``."""
    if account.merchant_id != merchant.pk:
        raise DomainError("payout_account_invalid", details={"payout_account": "not one of your accounts"})
    if account.status != PayoutAccount.Status.ACTIVE:
        raise DomainError("payout_account_invalid", details={"payout_account": "disabled"})
    kyc = KycRecord.objects.filter(merchant=merchant).first()
    if kyc is None or kyc.status != KycRecord.Status.VERIFIED or kyc.level < 1:
        raise DomainError("kyc_required")
    if not names_match(account.holder_name, kyc.real_name):
        raise DomainError("card_name_mismatch", details={"holder_name": account.holder_name, "kyc_name": kyc.real_name})


def api_key_create(*, merchant: Merchant, label: str = "", raw: str | None = None) -> str:
    """Create a key and return the secret once; only its hash is stored. ``raw`` (demo data only) fixes the
    secret so a demo can print the same key on every start."""
    if raw is None:
        prefix, raw = ApiKey.generate()
    else:
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != "sk" or not parts[1] or len(parts[2]) < 16:
            raise DomainError("invalid_request", details={"api_key": "sk_<prefix>_<secret of 16+ characters>"})
        prefix = parts[1]
    existing = ApiKey.objects.filter(prefix=prefix).first()
    if existing is not None:
        if existing.merchant_id != merchant.pk or existing.key_hash != ApiKey.hash_secret(raw):
            raise DomainError("invalid_request", details={"api_key": "this key prefix is taken"})
        return raw
    ApiKey.objects.create(merchant=merchant, prefix=prefix, key_hash=ApiKey.hash_secret(raw), label=label)
    return raw


def api_key_signing_set(*, merchant: Merchant, prefix: str, required: bool) -> str:
    """Turn request signing on or off for one of the merchant's live keys. On: a new signing secret, returned
    once (stored encrypted: the server computes the same HMAC); every request with the key must then be signed
    (accounts.api_auth). Off: the secret is forgotten and \"\" is returned."""
    key = ApiKey.objects.filter(merchant=merchant, prefix=prefix, revoked_at__isnull=True).first()
    if key is None:
        raise DomainError("not_found", details={"api_key": prefix})
    secret = f"ss_{secrets.token_urlsafe(32)}" if required else ""
    key.signing_required = required
    key.signing_secret = secret
    key.save(update_fields=["signing_required", "signing_secret"])
    return secret


def login_record(*, merchant: Merchant, ip: str, device: str, now: Any = None) -> None:
    merchant_event_publish(event=_event(merchant, "login", ts=now, ip=ip, device=device))


def payout_account_find(*, merchant: Merchant, account_number: str, kind: str | None = None) -> PayoutAccount | None:
    """One of the merchant's payout accounts by its full number (looked up by keyed hash: the column itself is
    encrypted)."""
    accounts = merchant.payout_accounts.filter(account_number_hash=pii_hash("account", account_number.strip()))
    if kind is not None:
        accounts = accounts.filter(kind=kind)
    return accounts.order_by("pk").first()


def payout_account_set_default(*, merchant: Merchant, account: PayoutAccount) -> None:
    """Make ``account`` the merchant's default. The same two updates payout_account_add makes, under the
    merchant's row lock, without a "card bound" risk event: nothing was bound."""
    if account.merchant_id != merchant.pk:
        raise DomainError("not_found")
    with transaction.atomic():
        Merchant.objects.select_for_update().get(pk=merchant.pk)
        merchant.payout_accounts.exclude(pk=account.pk).update(is_default=False)
        PayoutAccount.objects.filter(pk=account.pk).update(is_default=True)


def notifications_mark_read(*, merchant_id: int, notification_id: int | None = None) -> int:
    """Mark one of the merchant's unread notifications read, or all of them (``notification_id`` None).
    Returns how many were marked."""
    unread = Notification.objects.filter(merchant_id=merchant_id, read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())


def phone_change(*, merchant: Merchant, phone: str, ip: str = "", device: str = "", now: Any = None) -> None:
    """The merchant's own new phone number (risk sees the change)."""
    with transaction.atomic():
        kyc = KycRecord.objects.select_for_update().filter(merchant=merchant).first()
        if kyc is not None:
            kyc.phone = phone
            kyc.save(update_fields=["phone", "phone_hash"])
        merchant_event_publish(event=_event(merchant, "phone_changed", ts=now, phone=phone, ip=ip, device=device))


# --- identity changes and revealing personal numbers (staff, audited) -------------------------------------
def kyc_identity_change(
    *,
    merchant: Merchant,
    by: User,
    reason: str,
    real_name: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
    now: datetime | None = None,
) -> KycRecord:
    """Change the identity on a merchant's KYC record (name, resident ID number, phone). Verification starts
    over: the record goes back to pending at level 0, the merchant loses its tier, and no payout account can
    receive money (``kyc_required``) until ``kyc_verify`` confirms the new identity — after which only accounts
    in the new name can. An audit event records who changed what (numbers masked) and why."""
    if not by.has_perm("accounts.change_kyc_identity"):
        raise DomainError("permission_denied")
    if not (reason or "").strip():
        raise DomainError("invalid_request", details={"reason": "say why the identity changes"})
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        kyc = KycRecord.objects.select_for_update().get(merchant=merchant)
        new = {
            "real_name": real_name.strip() if real_name is not None else kyc.real_name,
            "id_number": id_number_validate(id_number) if id_number is not None else kyc.id_number,
            "phone": phone.strip() if phone is not None else kyc.phone,
        }
        if not new["real_name"] or not new["phone"]:
            raise DomainError("invalid_request", details={"kyc": "name and phone are required"})
        changed = [f for f, v in new.items() if v != getattr(kyc, f)]
        if not changed:
            raise DomainError("invalid_request", details={"kyc": "nothing changes"})
        masks = {"real_name": lambda v: v, "id_number": mask_id_number, "phone": mask_phone}
        detail = {f: {"from": masks[f](getattr(kyc, f)), "to": masks[f](new[f])} for f in changed}
        for field, value in new.items():
            setattr(kyc, field, value)
        kyc.status, kyc.level, kyc.verified_at = KycRecord.Status.PENDING, 0, None
        kyc.four_elements_card, kyc.provider, kyc.provider_ref = "", "", ""
        kyc._history_user = by  # type: ignore[attr-defined]
        kyc._change_reason = f"identity change: {reason.strip()}"[:100]  # type: ignore[attr-defined]
        kyc.save()
        merchant_tier_refresh(merchant=merchant, now=now)
        AuditEvent.objects.create(
            action=AuditEvent.Action.KYC_IDENTITY_CHANGED,
            actor=by,
            actor_label=by.get_username(),
            target_type="accounts.kycrecord",
            target_id=str(kyc.pk),
            merchant=merchant,
            reason=reason.strip()[:255],
            detail={"changed": detail, "verification": "reset to pending, level 0"},
        )
        if "phone" in changed:
            merchant_event_publish(event=_event(merchant, "phone_changed", ts=now, phone=new["phone"]))
    return kyc


PII_FIELDS = {
    "accounts.kycrecord": ("id_number", "phone", "four_elements_card"),
    "accounts.payoutaccount": ("account_number",),
}


def pii_reveal(*, target: KycRecord | PayoutAccount, by: User, reason: str) -> dict[str, str]:
    """The full numbers of one KYC record or payout account, for a user allowed to see them; who saw what,
    when and why is recorded first."""
    if not by.has_perm("accounts.reveal_pii"):
        raise DomainError("permission_denied")
    if not (reason or "").strip():
        raise DomainError("invalid_request", details={"reason": "say why the full number is needed"})
    label = target._meta.label_lower
    fields = PII_FIELDS[label]
    values = {f: str(getattr(target, f) or "") for f in fields}
    AuditEvent.objects.create(
        action=AuditEvent.Action.PII_REVEALED,
        actor=by,
        actor_label=by.get_username(),
        target_type=label,
        target_id=str(target.pk),
        merchant_id=target.merchant_id,
        reason=reason.strip()[:255],
        detail={"fields": [f for f, v in values.items() if v]},
    )
    return values
