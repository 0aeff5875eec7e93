"""Re-encrypt every personal number with the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), restart, run this command;
when it reports nothing left under an old key, drop the old keys. Plain values left from before encryption are
encrypted too. Safe to run again and while the platform runs (one row at a time, compare-and-set)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from config.crypto import EncryptedTextField, ciphertext_key_id, decrypt, encrypt, is_ciphertext, keyring


def encrypted_columns() -> list[tuple[str, str, str]]:
    """(table, primary key column, column) of every encrypted field, historical tables included."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                found.append((model._meta.db_table, str(model._meta.pk.column), str(field.column)))
    return sorted(set(found))


def rotate(*, dry_run: bool = False) -> dict[str, int]:
    current = keyring().current_id
    counts: dict[str, int] = {}
    qn = connection.ops.quote_name
    for table, pk, column in encrypted_columns():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {qn(pk)}, {qn(column)} FROM {qn(table)} WHERE {qn(column)} <> '' AND {qn(column)} NOT LIKE %s",
                [f"v1:{current}:%"],
            )
            rows = cursor.fetchall()
        done = 0
        for row_pk, value in rows:
            plain = decrypt(value) if is_ciphertext(value) else value
            if dry_run:
                done += 1
                continue
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s AND {qn(column)} = %s",
                    [encrypt(plain), row_pk, value],
                )
                done += cursor.rowcount
        counts[f"{table}.{column}"] = done
    return counts


class Command(BaseCommand):
    help = "Re-encrypt personal numbers with the newest FIELD_ENCRYPTION_KEYS key (and encrypt plain leftovers)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be re-encrypted")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = rotate(dry_run=options["dry_run"])
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        for column, n in counts.items():
            self.stdout.write(f"{column}: {verb} {n}")
        self.stdout.write(
            self.style.SUCCESS(f"newest key {keyring().current_id}; {verb} {sum(counts.values())} values")
        )


__all__ = ["ciphertext_key_id", "encrypted_columns", "rotate"]
