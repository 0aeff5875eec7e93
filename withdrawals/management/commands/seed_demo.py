"""Demo data: merchants with balances and cards for every sandbox path, a staff user per role, channels.
Idempotent.

Demo mode only (``DEMO_MODE=1``, which settings allow only with ``DJANGO_DEBUG=1``): the users share a known
password, the merchants get fixed API keys and the staff fixed TOTP seeds, all printed on every start."""

import base64
import hashlib
import hmac
import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey, Merchant, User
from accounts.roles import roles_sync
from accounts.services import api_key_create, kyc_verify, merchant_register, payout_account_add
from channels.models import Channel
from channels.sandbox_rules import make_card_number
from wallets.services import merchant_sale_settle, reserve_adjust, sale_credit
from withdrawals.fees import policy_current

PASSWORD = "demo-pass-2026"


def demo_totp_key(username: str) -> str:
    """A fixed TOTP seed per demo staff user (hex, 20 bytes), printed at start; the code page shows the current
    code of these devices in demo mode, so the whole demo runs in one browser."""
    return hmac.new(b"demo-staff-totp-not-for-production", username.encode(), hashlib.sha1).hexdigest()


def demo_totp_seed_base32(username: str) -> str:
    return base64.b32encode(bytes.fromhex(demo_totp_key(username))).decode().rstrip("=")


def seed_staff_totp(user: User) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from config.admin_site import DEMO_DEVICE_NAME

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
    from channels.gateway.keys import load_or_create

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


class Command(BaseCommand):
    help = "Seed demo merchants, staff and channels (safe to run again)."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if not settings.DEMO_MODE:
            raise CommandError(
                "seed_demo creates users with a known password, fixed API keys and fixed staff TOTP seeds: it runs "
                "only in demo mode (DEMO_MODE=1 with DJANGO_DEBUG=1; `make run` sets both)"
            )
        roles_sync()
        policy_current()
        for username, _label, group in STAFF:
            staff = User.objects.filter(username=username).first()
            if staff is None:
                if group is None:
                    staff = User.objects.create_superuser(username=username, password=PASSWORD, email="")
                else:
                    staff = User.objects.create_user(username=username, password=PASSWORD, is_staff=True)
                    staff.groups.add(Group.objects.get(name=group))
            seed_staff_totp(staff)
        lines = []
        for index, (username, shop, real_name, id_number, category, credit, reserve, suffixes) in enumerate(
            MERCHANTS, start=1
        ):
            user = User.objects.filter(username=username).first()
            if user is None:
                reg = merchant_register(
                    name=shop,
                    category=category,
                    real_name=real_name,
                    id_number=id_number,
                    phone=f"1380013{index:04d}",  # one phone per merchant: a shared one links accounts
                    username=username,
                    password=PASSWORD,
                )
                merchant = reg.merchant
                kyc_verify(merchant=merchant)
                payout_account_add(
                    merchant=merchant,
                    account_number=make_card_number(seed=merchant.pk),
                    holder_name=real_name,
                    bank_code="ICBC",
                )
                for suffix in suffixes:
                    payout_account_add(
                        merchant=merchant,
                        account_number=make_card_number(suffix, seed=merchant.pk),
                        holder_name=real_name,
                        bank_code="CMB",
                    )
                payout_account_add(
                    merchant=merchant,
                    account_number=make_card_number(seed=merchant.pk + 99),
                    holder_name="赵六",
                    bank_code="ABC",
                )  # someone else's name: cannot receive
                # Earlier sales, already past any freeze window, then today's sale through the normal path.
                sale_credit(merchant_id=merchant.pk, order_ref=f"demo-{username}-1", amount=credit)
                merchant_sale_settle(
                    merchant_id=merchant.pk, order_ref=f"demo-{username}-2", amount=credit // 10, buyer="demo-buyer"
                )
                if reserve:
                    Merchant.objects.filter(pk=merchant.pk).update(reserve_required=reserve)
                    reserve_adjust(merchant_id=merchant.pk, amount=reserve, reference=f"demo-reserve-{merchant.pk}")
                key = api_key_create(merchant=merchant, label="demo", raw=demo_api_key(username))
                lines.append(f"  {username:<10} {shop}: API key {key}")
            else:
                merchant = user.merchant
                key = demo_api_key(username)
                if ApiKey.objects.filter(prefix=key.split("_")[1], revoked_at__isnull=True).exists():
                    lines.append(f"  {username:<10} {merchant.name}: API key {key}")
                else:
                    lines.append(f"  {username:<10} {merchant.name}: demo API key revoked; create one in the admin")
        channel_lines = seed_gateway_channels()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Channels (sandbox gateway {settings.SANDBOX_GATEWAY_URL}; in-process sandbox as fallback):")
        for line in channel_lines:
            self.stdout.write(line)
        self.stdout.write(f"Merchants (password {PASSWORD}):")
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(f"Staff (password {PASSWORD}): " + ", ".join(f"{u} ({label})" for u, label, _ in STAFF))
        self.stdout.write(
            "Staff second factor: after the password the admin asks for a TOTP code; in demo mode the code page "
            "shows the current code. To use an authenticator app instead, add these seeds:"
        )
        for username, _label, _group in STAFF:
            self.stdout.write(f"  {username:<13} TOTP seed {demo_totp_seed_base32(username)}")
        self.stdout.write(
            "Sandbox cards: ending 11 fails (invalid account), 22 frozen, 33 times out then pays, "
            "44 pays after ~20 s, 55 busy twice, 66 lost request, 77 name mismatch, 88 bank return."
        )
