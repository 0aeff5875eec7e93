"""Demo data: merchants with balances and cards for every sandbox path, a staff user per role, channels (the
``seed_demo`` command puts them in; ``make chaos`` and ``make serve`` seed the gateway's channels from here).

Demo mode only (``DEMO_MODE=1``, which settings allow only with ``DJANGO_DEBUG=1``): the users share a known
password, the merchants get fixed API keys and the staff fixed TOTP seeds, all printed on every start."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from channels.gateway.keys import load_or_create
from channels.models import Channel
from config.admin_site import DEMO_DEVICE_NAME
from withdrawals.services import withdrawal_submit

PASSWORD = "demo-pass-2026"


def demo_totp_key(username: str) -> str:
    """A fixed TOTP seed per demo staff user (hex, 20 bytes), printed at start; the code page shows the current
    code of these devices in demo mode, so the whole demo runs in one browser."""
    return hmac.new(b"demo-staff-totp-not-for-production", username.encode(), hashlib.sha1).hexdigest()


def demo_totp_seed_base32(username: str) -> str:
    return base64.b32encode(bytes.fromhex(demo_totp_key(username))).decode().rstrip("=")


def seed_staff_totp(user: User) -> None:
    TOTPDevice.objects.get_or_create(
        user=user,
        name=DEMO_DEVICE_NAME,
        defaults={"key": demo_totp_key(user.get_username()), "confirmed": True},
    )


def demo_api_key(username: str) -> str:
    """Fixed demo keys, printed on every start. Demo data only: a real merchant's key is random and shown once."""
    return f"sk_demo{username}_demo-key-not-for-production"


MERCHANTS = [
    # username, shop, real name, id number, category, credit fen, reserve fen, extra card suffixes
    (
        "alice",
        "Alice 游戏点卡店",
        "张三",
        "11010519491231002X",
        "game_cards",
        5_000_000,
        100_000,
        ["11", "22", "33", "44", "66"],
    ),
    ("bob", "Bob 话费充值", "王芳", "110101199003074477", "phone_topup", 800_000, 0, ["55"]),
    ("carol", "Carol 电商卡券", "刘洋", "310101198001010018", "ecommerce_cards", 12_000_000, 0, []),
]
STAFF = [
    ("admin", "superuser", None),
    ("reviewer", "reviewer", "reviewer"),
    ("reviewer2", "reviewer", "reviewer"),
    ("senior", "senior reviewer", "senior_reviewer"),
    ("compliance", "compliance officer", "compliance_officer"),
    ("ops", "operations", "operations"),
    ("support", "support", "support"),
    # A channel config change needs two people: one proposes, a different one approves.
    ("channeladmin", "channel admin", "channel_admin"),
    ("channeladmin2", "channel admin", "channel_admin"),
    ("privacy", "privacy officer", "privacy_officer"),
]


# The sandbox gateway's three protocols, priced and timed so routing visibly differs: small bank-card payouts go
# to Alipay (cheapest), larger ones bank-direct (flat fee), instant ones to the fastest, large ones bank-direct.
GATEWAY_CHANNELS = [
    # code, name, adapter, kinds, speed tiers, fee fixed, rate bp, min, max, arrival s, max amount, daily, priority
    (
        "bankdirect",
        "银行直连（沙箱）",
        "bankdirect",
        ["bank_card"],
        ["standard", "t1"],
        200,
        0,
        0,
        None,
        120,
        100_000_000,
        2_000_000_000,
        10,
    ),
    (
        "alipay",
        "支付宝转账（沙箱）",
        "alipay",
        ["alipay", "bank_card"],
        [],
        0,
        15,
        100,
        2500,
        30,
        5_000_000,
        500_000_000,
        20,
    ),
    ("wechat", "微信商家转账（沙箱）", "wechat", ["wechat"], [], 0, 10, 50, 2000, 10, 2_000_000, 200_000_000, 30),
]


def gateway_adapter_configs() -> dict[str, dict]:
    """Adapter configs from the gateway's keys.json; the keys are created here when the gateway never ran."""
    data_dir = Path(settings.SANDBOX_GATEWAY_DATA_DIR).resolve()
    if not (data_dir / "keys.json").exists():
        load_or_create(data_dir, settings.SANDBOX_GATEWAY_URL)
    index = json.loads((data_dir / "keys.json").read_text())
    configs = {}
    base = settings.SANDBOX_GATEWAY_URL.rstrip("/")
    for name, config in index["adapters"].items():
        config = dict(config)
        for key, value in list(config.items()):
            if key.endswith("_file"):  # keys.json may hold paths relative to where the gateway was started
                config[key] = str(data_dir / Path(value).name)
        # The gateway may have written keys.json for another address: point at the configured one.
        if name == "bankdirect":
            config["base_url"] = f"{base}/bankdirect/v1"
        elif name == "alipay":
            config["server_url"] = f"{base}/alipay/gateway.do"
        elif name == "wechat":
            config["base_url"] = base
        config["notify_url"] = f"{settings.PLATFORM_BASE_URL}/callbacks/{name}/"
        config["timeout"] = settings.CHANNEL_CALL_TIMEOUT_SECONDS
        configs[name] = config
    return configs


def seed_gateway_channels() -> list[str]:
    configs = gateway_adapter_configs()
    lines = []
    for row in GATEWAY_CHANNELS:
        code, name, adapter, kinds, tiers, fixed, rate, fmin, fmax, arrival, max_amount, daily, priority = row
        channel, created = Channel.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "adapter": adapter,
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
                "config": configs[adapter],
            },
        )
        if not created and channel.config != configs[adapter]:
            channel.config = configs[adapter]  # keys / addresses follow the gateway; business settings stay
            channel.save(update_fields=["config", "updated_at"])
        lines.append(f"  {code:<11} {name}: fee {fixed} + {rate}bp, ~{arrival}s, kinds {', '.join(kinds)}")
    # The in-process sandbox stays as the last resort: dearest, lowest priority.
    Channel.objects.filter(code="sandbox", fee_fixed=0).update(fee_fixed=1000, priority=900)
    return lines


def seed_review_cases() -> list[str]:
    """A case waiting in the review queue from the first start (safe to run again): carol's ¥60,000 to her own
    card, at or above the dual-approval threshold, so two different reviewers (reviewer, reviewer2) must approve
    it before any channel sees it; once paid, tonight's compliance job drafts its large-value report."""
    carol = User.objects.filter(username="carol").select_related("merchant").first()
    if carol is None or carol.merchant is None:
        return []
    account = carol.merchant.payout_accounts.filter(is_default=True).first()
    if account is None:
        return []
    result = withdrawal_submit(
        merchant_id=carol.merchant.pk,
        payout_account_id=account.pk,
        amount=6_000_000,
        idempotency_key="demo-review-case-1",
        source="web",
    )
    w = result.withdrawal
    return [f"Review queue: carol's ¥60,000.00 withdrawal {w.order_no} ({w.get_status_display()}) needs two reviewers"]
