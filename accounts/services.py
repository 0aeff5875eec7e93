from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumError

from config.errors import DomainError
from risk.engine.identity import id_number_valid, normalise_name
from risk.services import risk_observe
from wallets.services import wallet_open

from .models import ApiKey, KycRecord, Merchant, PayoutAccount, User


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
        wallet_open(merchant_id=merchant.pk)
        user = None
        if username:
            user = User.objects.create_user(username=username, password=password, merchant=merchant)
            from django.contrib.auth.models import Group

            group = Group.objects.filter(name="merchant").first()
            if group:
                user.groups.add(group)
        risk_observe(
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


def kyc_verify(*, merchant: Merchant, level: int = 2) -> KycRecord:
    """Mark KYC verified after the provider check. The risk issue adds the four-element provider call."""
    with transaction.atomic():
        kyc = KycRecord.objects.select_for_update().get(merchant=merchant)
        id_number_validate(kyc.id_number)
        kyc.status = KycRecord.Status.VERIFIED
        kyc.level = level
        kyc.verified_at = timezone.now()
        kyc.save(update_fields=["status", "level", "verified_at"])
    return kyc


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
            account_number=number,
            defaults={"holder_name": holder_name.strip(), "bank_code": bank_code},
        )
        if make_default or not merchant.payout_accounts.filter(is_default=True).exists():
            merchant.payout_accounts.exclude(pk=account.pk).update(is_default=False)
            account.is_default = True
            account.save(update_fields=["is_default"])
        risk_observe(
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


def payout_account_check_receivable(*, account: PayoutAccount, merchant: Merchant) -> None:
    """Raises unless money may be sent to ``account`` for ``merchant``."""
    if account.merchant_id != merchant.pk:
        raise DomainError("payout_account_invalid", details={"payout_account": "not one of your accounts"})
    if account.status != PayoutAccount.Status.ACTIVE:
        raise DomainError("payout_account_invalid", details={"payout_account": "disabled"})
    kyc = KycRecord.objects.filter(merchant=merchant).first()
    if kyc is None or kyc.status != KycRecord.Status.VERIFIED:
        raise DomainError("kyc_required")
    if not names_match(account.holder_name, kyc.real_name):
        raise DomainError("card_name_mismatch", details={"holder_name": account.holder_name, "kyc_name": kyc.real_name})


def api_key_create(*, merchant: Merchant, label: str = "") -> str:
    """Create a key and return the secret once; only its hash is stored."""
    prefix, raw = ApiKey.generate()
    ApiKey.objects.create(merchant=merchant, prefix=prefix, key_hash=ApiKey.hash_secret(raw), label=label)
    return raw


def login_record(*, merchant: Merchant, ip: str, device: str, now: Any = None) -> None:
    risk_observe(event=_event(merchant, "login", ts=now, ip=ip, device=device))


def phone_change(*, merchant: Merchant, phone: str, ip: str = "", device: str = "", now: Any = None) -> None:
    with transaction.atomic():
        KycRecord.objects.filter(merchant=merchant).update(phone=phone)
        risk_observe(event=_event(merchant, "phone_changed", ts=now, phone=phone, ip=ip, device=device))
