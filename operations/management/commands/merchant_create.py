import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import api_key_create, kyc_verify, merchant_register, payout_account_add
from channels.sandbox_rules import make_card_number
from config.errors import DomainError
from wallets.services import merchant_sale_settle

DEMO_ID_NUMBERS = ["11010519491231002X", "110101199003074477", "310101198001010018", "320102198506151236"]


class Command(BaseCommand):
    help = "Create a KYC-verified merchant with a sandbox card that pays, credit it, print its API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--credit", type=int, default=0, help="fen credited as a sale settlement")
        parser.add_argument("--real-name", default="张三")
        parser.add_argument("--id-number", default=DEMO_ID_NUMBERS[0])
        parser.add_argument("--phone", default="13800138000")
        parser.add_argument("--category", default="game_cards")
        parser.add_argument("--username", default=None)
        parser.add_argument("--password", default=None)
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **o: Any) -> None:
        if o["credit"] < 0:
            raise CommandError("--credit must be >= 0")
        try:
            reg = merchant_register(
                name=o["name"],
                category=o["category"],
                real_name=o["real_name"],
                id_number=o["id_number"],
                phone=o["phone"],
                username=o["username"],
                password=o["password"],
            )
            merchant = reg.merchant
            kyc_verify(merchant=merchant)
            account = payout_account_add(
                merchant=merchant,
                account_number=make_card_number(seed=merchant.pk),
                holder_name=o["real_name"],
                bank_code="ICBC",
            )
            if o["credit"]:
                merchant_sale_settle(merchant_id=merchant.pk, order_ref=f"cli-credit-{merchant.pk}", amount=o["credit"])
            key = api_key_create(merchant=merchant, label="merchant_create")
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.details or ''}")
        out = {"merchant_id": merchant.pk, "api_key": key, "payout_account_id": account.pk}
        if o["json"]:
            self.stdout.write(json.dumps(out))
        else:
            self.stdout.write(f"merchant {merchant.pk} created; API key {key}; payout account {account.pk}")
