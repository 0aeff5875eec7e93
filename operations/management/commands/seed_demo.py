"""``manage.py seed_demo``: demo merchants, staff and channels (operations.demo). Idempotent; demo mode only."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey, Merchant, User
from accounts.roles import roles_sync
from accounts.services import api_key_create, kyc_verify, merchant_register, payout_account_add
from channels.sandbox_rules import make_card_number
from operations.demo import (
    MERCHANTS,
    PASSWORD,
    STAFF,
    demo_api_key,
    demo_totp_seed_base32,
    seed_gateway_channels,
    seed_review_cases,
    seed_staff_totp,
)
from wallets.services import merchant_sale_settle, reserve_adjust, sale_credit
from withdrawals.fees import policy_current


class Command(BaseCommand):
    help = "Seed demo merchants, staff and channels (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
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
                existing = user.merchant
                assert existing is not None, f"demo user {username} has no merchant"
                key = demo_api_key(username)
                if ApiKey.objects.filter(prefix=key.split("_")[1], revoked_at__isnull=True).exists():
                    lines.append(f"  {username:<10} {existing.name}: API key {key}")
                else:
                    lines.append(f"  {username:<10} {existing.name}: demo API key revoked; create one in the admin")
        channel_lines = seed_gateway_channels()
        prepared = seed_review_cases()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Channels (sandbox gateway {settings.SANDBOX_GATEWAY_URL}; in-process sandbox as fallback):")
        for line in channel_lines:
            self.stdout.write(line)
        self.stdout.write(f"Merchants (password {PASSWORD}):")
        for line in lines:
            self.stdout.write(line)
        for line in prepared:
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
