"""The platform a run starts from, built through the services: staff, channels on the sandbox gateway, and
merchants of every category — with their freeze windows, reserves, KYC, cards (some with sandbox behaviours,
one in another person's name), Alipay and WeChat accounts, authenticator apps, and months of sales history."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group

from accounts.identity import id_check_char
from accounts.models import Merchant, PayoutAccount, User
from accounts.roles import roles_sync
from accounts.services import kyc_verify, login_record, merchant_register, payout_account_add, tiers_active
from channels.models import Channel
from channels.sandbox_rules import SUFFIXES, make_card_number
from wallets.services import merchant_sale_settle
from withdrawals.fees import policy_current

from .channel import GATEWAY_URL
from .randomness import Dice

PLATFORM_URL = "http://platform.sim"
YUAN = 100

CATEGORIES = [c.value for c in Merchant.Category]
SURNAMES = "王李张刘陈杨黄赵周吴徐孙马胡朱郭何罗高林"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "洋",
    "勇",
    "艳",
    "杰",
    "军",
    "涛",
    "明",
    "超",
    "秀英",
    "桂英",
    "建华",
    "志强",
]
PROVINCES = ["110101", "310104", "440106", "510107", "320102", "330106", "420111", "610113"]

# The gateway's three protocols, priced and limited like the demo (withdrawals seed_demo), so routing differs by
# amount, speed and account kind. code, adapter, kinds, speed tiers, fee fixed, rate bp, min, max, arrival s,
# max amount, daily amount, priority.
CHANNELS = [
    ("bankdirect", "bankdirect", ["bank_card"], ["standard", "t1"], 200, 0, 0, None, 120, 100_000_000,
     2_000_000_000, 10),
    ("alipay", "alipay", ["alipay", "bank_card"], [], 0, 15, 100, 2500, 30, 5_000_000, 500_000_000, 20),
    ("wechat", "wechat", ["wechat"], [], 0, 10, 50, 2000, 10, 2_000_000, 200_000_000, 30),
]  # fmt: skip


@dataclasses.dataclass
class SimMerchant:
    index: int
    id: int
    user: User
    category: str
    size: str
    real_name: str
    phone: str
    reserve_required: int
    freeze_days: int | None
    registered_at: datetime
    accounts: dict[str, int]  # role -> payout account id: default, alipay, wechat, card_<suffix>, other_name
    account_kinds: dict[int, str]
    devices: list[str]
    ip: str
    totp: bool
    sales_per_day: float
    sale_mean: int  # fen
    withdrawals_per_day: float


@dataclasses.dataclass
class World:
    merchants: list[SimMerchant]
    reviewers: list[User]
    operator: User
    channel_codes: list[str]


def id_number(dice: Dice, index: int) -> str:
    rng = dice.stream("world")
    region = rng.choice(PROVINCES)
    birth = date(1965, 1, 1) + timedelta(days=rng.randint(0, 365 * 35))
    body = f"{region}{birth:%Y%m%d}{(index * 37 + rng.randint(0, 99)) % 1000:03d}"
    return body + id_check_char(body)


def phone_number(dice: Dice, index: int) -> str:
    rng = dice.stream("world")
    while True:
        number = f"1{rng.choice('3589')}{rng.randint(0, 9)}{index:04d}{rng.randint(0, 9999):04d}"
        if not number.endswith("0000"):
            return number


def _card(seed: int, suffix: str = "") -> str:
    while True:
        number = make_card_number(suffix, seed=seed)
        if not number.endswith("0000"):  # the sandbox KYC provider refuses cards ending 0000
            return number
        seed += 7919


def build_world(*, dice: Dice, clock: Any, start: datetime, merchants: int, gateway_configs: dict[str, Any]) -> World:
    roles_sync()
    policy_current()
    tiers_active()
    channel_codes = _channels(dice, gateway_configs)
    reviewers = [_staff(f"sim_reviewer{i}", "reviewer") for i in (1, 2, 3)]
    operator = _staff("sim_ops", "operations")

    rng = dice.stream("world")
    profiles = []
    for index in range(merchants):
        category = CATEGORIES[index % len(CATEGORIES)]
        size = rng.choices(["small", "medium", "big"], weights=[0.4, 0.35, 0.25])[0]
        age_days = rng.choice([3, 12, 45, 120, 400]) + rng.uniform(0, 5)
        profiles.append((index, category, size, start - timedelta(days=age_days)))
    # History happens in time order across merchants.
    sim_merchants = [_merchant(dice, clock, start, *p) for p in sorted(profiles, key=lambda p: p[3])]
    sim_merchants.sort(key=lambda m: m.index)
    # Earlier sales, settled in batches (one every few days, each worth those days' sales): the accounts have a
    # history — age, volume, first credit — without replaying months of single sales.
    history: list[tuple[datetime, int, SimMerchant, int]] = []
    for m in sim_merchants:
        days = min((start - m.registered_at).days, 90)
        for day in range(1, days + 1, 4):
            when = start - timedelta(days=day, seconds=rng.uniform(0, 86400))
            if when > m.registered_at:
                batch = sum(_sale_amount(dice, m) for _ in range(max(1, int(m.sales_per_day * 2))))
                history.append((when, len(history), m, batch))
    for when, n, m, amount in sorted(history, key=lambda h: (h[0], h[1])):
        clock.move_to(when)
        merchant_sale_settle(merchant_id=m.id, order_ref=f"hist-{n}", amount=amount, buyer=f"buyer{n % 97}")
    clock.move_to(start)
    return World(merchants=sim_merchants, reviewers=reviewers, operator=operator, channel_codes=channel_codes)


def _sale_amount(dice: Dice, m: SimMerchant) -> int:
    rng = dice.stream("sales")
    return max(100, int(rng.lognormvariate(0, 0.7) * m.sale_mean) // 100 * 100)


def _staff(username: str, role: str) -> User:
    user = User.objects.create_user(username=username, password=None, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def _channels(dice: Dice, configs: dict[str, Any]) -> list[str]:
    # The in-process sandbox channel bypasses the protocols; the simulation pays through the gateway only.
    Channel.objects.exclude(adapter__in=["bankdirect", "alipay", "wechat"]).update(enabled=False)
    rng = dice.stream("world")
    codes = []
    for code, adapter, kinds, tiers, fixed, rate, fmin, fmax, arrival, max_amount, daily, priority in CHANNELS:
        config = dict(configs[adapter])
        config["notify_url"] = f"{PLATFORM_URL}/callbacks/{code}/"
        # The bank's nightly batch: announced, so routing avoids the channel then.
        windows = [{"start": "23:50", "end": "00:20"}] if code == "bankdirect" and rng.random() < 0.7 else []
        Channel.objects.update_or_create(
            code=code,
            defaults={
                "name": f"{code} (simulated gateway)",
                "adapter": adapter,
                "enabled": True,
                "paused": False,
                "supported_account_kinds": kinds,
                "speed_tiers": tiers,
                "fee_fixed": fixed,
                "fee_rate_bp": rate,
                "fee_min": fmin,
                "fee_max": fmax,
                "expected_arrival_seconds": arrival,
                "max_amount": max_amount,
                "daily_amount_limit": daily,
                "priority": priority,
                "maintenance_windows": windows,
                "config": config,
            },
        )
        codes.append(code)
    assert all(c["base_url" if "base_url" in c else "server_url"].startswith(GATEWAY_URL) for c in configs.values())
    return codes


def _merchant(
    dice: Dice, clock: Any, start: datetime, index: int, category: str, size: str, at: datetime
) -> SimMerchant:
    rng = dice.stream("world")
    clock.move_to(at)
    real_name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    phone = phone_number(dice, index)
    device = f"simdev-{dice.seed}-{index}-0"
    ip = f"10.{dice.seed % 200}.{index}.{rng.randint(2, 250)}"
    reg = merchant_register(
        name=f"模拟商户{index:02d} {real_name}",
        kind=rng.choice([Merchant.Kind.INDIVIDUAL, Merchant.Kind.BUSINESS]),
        category=category,
        real_name=real_name,
        id_number=id_number(dice, index),
        phone=phone,
        username=f"sim_m{index:02d}",
        ip=ip,
        device=device,
        now=at,
    )
    merchant, user = reg.merchant, reg.user
    assert user is not None
    freeze = rng.choice([2, 3]) if rng.random() < 0.25 else None
    reserve = rng.choice([1_000, 5_000, 20_000]) * YUAN if rng.random() < 0.3 else 0
    if freeze is not None or reserve:
        Merchant.objects.filter(pk=merchant.pk).update(settlement_freeze_days=freeze, reserve_required=reserve)
        merchant.refresh_from_db()
    accounts: dict[str, int] = {}
    kinds: dict[int, str] = {}

    def bind(role: str, kind: str, number: str, holder: str, default: bool = False) -> None:
        account = payout_account_add(
            merchant=merchant,
            kind=kind,
            account_number=number,
            holder_name=holder,
            bank_code=rng.choice(["ICBC", "CMB", "ABC", "CCB", "BOC"]) if kind == PayoutAccount.Kind.BANK_CARD else "",
            make_default=default,
            ip=ip,
            device=device,
            now=at,
        )
        accounts[role] = account.pk
        kinds[account.pk] = kind

    bind("default", PayoutAccount.Kind.BANK_CARD, _card(dice.seed * 1000 + index), real_name, default=True)
    kyc_verify(merchant=merchant, now=at)
    if rng.random() < 0.5:
        bind("alipay", PayoutAccount.Kind.ALIPAY, f"sim{index:03d}x09@alipay.sim", real_name)
    if rng.random() < 0.4:
        bind("wechat", PayoutAccount.Kind.WECHAT, f"oSim{dice.seed}x{index:03d}y09", real_name)
    for suffix in sorted(SUFFIXES):
        if rng.random() < 0.15:
            bind(
                f"card_{suffix}", PayoutAccount.Kind.BANK_CARD, _card(dice.seed * 1000 + index * 10, suffix), real_name
            )
    if rng.random() < 0.2:
        bind("other_name", PayoutAccount.Kind.BANK_CARD, _card(dice.seed * 7 + index * 13), "赵六")
    totp = rng.random() < 0.25
    if totp:
        _enrol_totp(user)
    login_record(merchant=merchant, ip=ip, device=device, now=at)
    sale_mean = {"small": 120, "medium": 800, "big": 5000}[size] * YUAN
    return SimMerchant(
        index=index,
        id=merchant.pk,
        user=user,
        category=category,
        size=size,
        real_name=real_name,
        phone=phone,
        reserve_required=reserve,
        freeze_days=freeze,
        registered_at=at,
        accounts=accounts,
        account_kinds=kinds,
        devices=[device],
        ip=ip,
        totp=totp,
        sales_per_day={"small": 7, "medium": 5, "big": 4}[size] * rng.uniform(0.5, 1.5),
        sale_mean=sale_mean,
        withdrawals_per_day={"small": 2.0, "medium": 3.0, "big": 4.0}[size] * rng.uniform(0.5, 1.5),
    )


def _enrol_totp(user: User) -> None:
    from config.totp import totp_enrol_confirm, totp_enrol_start

    device = totp_enrol_start(user=user)
    totp_enrol_confirm(user=user, code=totp_token(device))


def totp_token(device: Any) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"
