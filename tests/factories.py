"""factory-boy factories that build through the services, so test data obeys the same rules as live data."""

from __future__ import annotations

import itertools

import factory

from accounts.models import Merchant, PayoutAccount, User
from accounts.services import kyc_verify, merchant_register, payout_account_add
from channels.models import Channel
from channels.sandbox_rules import make_card_number
from wallets.services import merchant_sale_settle

_seq = itertools.count(1)
ALICE_CREDIT = 10_000_000  # 100,000 yuan: enough for dual-approval amounts

# Valid resident ID numbers (GB 11643-1999 check characters) for test personas.
ID_NUMBERS = [
    "11010519491231002X",
    "110101199003074477",
    "310101198001010018",
    "320102198506151236",
    "510104199208084568",
]


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = "sandbox"
    name = "沙箱通道"
    adapter = Channel.Adapter.SANDBOX
    supported_account_kinds = ["bank_card", "alipay", "wechat"]
    expected_arrival_seconds = 30


class MerchantFactory(factory.Factory):
    """A KYC-verified merchant with a sandbox card in its own name and ``credit`` fen available."""

    class Meta:
        model = Merchant

    name = factory.LazyFunction(lambda: f"测试商户{next(_seq)}")
    real_name = "张三"
    id_number = factory.Iterator(ID_NUMBERS)
    phone = "13800138000"
    credit = 1_000_000
    card_suffix = ""
    username = None
    verified = True

    @classmethod
    def _create(cls, model_class, *, name, real_name, id_number, phone, credit, card_suffix, username, verified):
        reg = merchant_register(
            name=name,
            real_name=real_name,
            id_number=id_number,
            phone=phone,
            username=username,
            password="pass-1234" if username else None,
        )
        merchant = reg.merchant
        if verified:
            kyc_verify(merchant=merchant)
        payout_account_add(
            merchant=merchant,
            account_number=make_card_number(card_suffix, seed=merchant.pk),
            holder_name=real_name,
            bank_code="ICBC",
        )
        if credit:
            merchant_sale_settle(merchant_id=merchant.pk, order_ref=f"seed-{merchant.pk}", amount=credit)
        return merchant


def card_for(merchant: Merchant, suffix: str = "", holder_name: str | None = None) -> PayoutAccount:
    """Bind another sandbox card whose last digits choose its behaviour (see channels.sandbox_rules)."""
    return payout_account_add(
        merchant=merchant,
        account_number=make_card_number(suffix, seed=merchant.pk * 100 + len(suffix) + 7),
        holder_name=holder_name or merchant.kyc.real_name,
        bank_code="CMB",
    )


def reviewer(username: str, *, role: str = "reviewer") -> User:
    from django.contrib.auth.models import Group

    from accounts.roles import roles_sync

    if not Group.objects.filter(name=role).exists():
        roles_sync()  # transactional tests flush the groups the data migration made
    user = User.objects.create_user(username=username, password="pass-1234", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # fresh, so the permission cache sees the group
