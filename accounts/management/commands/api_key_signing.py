"""Turn request signing on (printing the new signing secret, once) or off for an API key, by its prefix.

python manage.py api_key_signing 3f9a1c2e          # on: prints ss_…, shown only now
python manage.py api_key_signing 3f9a1c2e --off
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiKey
from accounts.services import api_key_signing_set
from config.errors import DomainError


class Command(BaseCommand):
    help = "Require signed requests for an API key (prints its signing secret once), or stop requiring them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the key's prefix: sk_<prefix>_…")
        parser.add_argument("--off", action="store_true", help="stop requiring signatures")

    def handle(self, *args: Any, **options: Any) -> None:
        key = ApiKey.objects.select_related("merchant").filter(prefix=options["prefix"]).first()
        if key is None:
            raise CommandError(f"no API key with prefix {options['prefix']!r}")
        try:
            secret = api_key_signing_set(merchant=key.merchant, prefix=key.prefix, required=not options["off"])
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if secret:
            self.stdout.write(f"signing on for sk_{key.prefix}_…; signing secret (shown once): {secret}")
        else:
            self.stdout.write(f"signing off for sk_{key.prefix}_…")
