"""Personal data at rest: AES-256-GCM field encryption with rotating keys, and keyed hashes for lookups.

Resident ID numbers, phone numbers and payout account numbers are stored only as ciphertext
(:class:`EncryptedTextField`). Equality lookups, uniqueness and the risk engine's link keys use a keyed hash
(HMAC-SHA256, :func:`pii_hash`) kept in its own column (:class:`HashField`), so the database never needs the
number itself to find a row.

Keys come from the environment (settings ``FIELD_ENCRYPTION_KEYS``: base64 32-byte keys, newest first, and
``FIELD_HASH_KEY``). Ciphertext names the key that made it (``v1:<key id>:<base64 nonce+ciphertext>``), so an
old key keeps decrypting after a newer one is put first, and ``manage.py pii_rotate_keys`` re-encrypts every
row with the newest key; then the old key can be dropped. Fixed development keys are used only when settings
allow them (DEBUG, the demo, the test run); production refuses to start without real keys (config.settings).

The hash key is not rotated by that command: every lookup column and every risk link key is derived from it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "v1"
# Development only (DEBUG, demo, tests): publicly known, so worthless as protection — production sets its own.
DEV_ENCRYPTION_KEY = base64.b64encode(hashlib.sha256(b"kamen dev field encryption key").digest()).decode()
DEV_HASH_KEY = base64.b64encode(hashlib.sha256(b"kamen dev field hash key").digest()).decode()
_CIPHERTEXT = re.compile(r"^v1:[0-9a-f]{8}:[A-Za-z0-9_\-]+={0,2}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class DecryptionError(Exception):
    """A value could not be decrypted: its key is not among FIELD_ENCRYPTION_KEYS, or it was tampered with."""


def generate_key() -> str:
    """A new random key in the form FIELD_ENCRYPTION_KEYS / FIELD_HASH_KEY take."""
    return base64.b64encode(os.urandom(32)).decode()


def _decode_key(raw: str, name: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name}: {raw[:4]}… is not base64") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name}: each key must be 32 bytes (base64 of 32 random bytes)")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"key-id" + key).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (id, key), newest first
    hash_key: bytes

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def key(self, kid: str) -> bytes | None:
        return next((k for i, k in self.keys if i == kid), None)


def _dev_allowed() -> bool:
    return bool(getattr(settings, "FIELD_ENCRYPTION_DEV_KEYS", False))


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    raw_keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    raw_hash = str(getattr(settings, "FIELD_HASH_KEY", "") or "")
    if not raw_keys or not raw_hash:
        if not _dev_allowed():
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS and FIELD_HASH_KEY must be set (see README)")
        raw_keys = raw_keys or [DEV_ENCRYPTION_KEY]
        raw_hash = raw_hash or DEV_HASH_KEY
    keys = tuple((key_id(k), k) for k in (_decode_key(r, "FIELD_ENCRYPTION_KEYS") for r in raw_keys))
    return Keyring(keys=keys, hash_key=_decode_key(raw_hash, "FIELD_HASH_KEY"))


def keyring_reset() -> None:
    """Forget the loaded keys (after settings change: tests, key rotation in one process)."""
    keyring.cache_clear()


def is_ciphertext(value: str) -> bool:
    return bool(_CIPHERTEXT.match(value))


def ciphertext_key_id(value: str) -> str:
    return value.split(":", 2)[1] if is_ciphertext(value) else ""


def encrypt(plaintext: str) -> str:
    ring = keyring()
    nonce = os.urandom(12)
    sealed = AESGCM(ring.keys[0][1]).encrypt(nonce, plaintext.encode(), PREFIX.encode())
    return f"{PREFIX}:{ring.current_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(value: str) -> str:
    try:
        _prefix, kid, body = value.split(":", 2)
        blob = base64.urlsafe_b64decode(body)
    except (ValueError, binascii.Error):
        raise DecryptionError("not a field ciphertext") from None
    key = keyring().key(kid)
    if key is None:
        raise DecryptionError(f"key {kid} is not in FIELD_ENCRYPTION_KEYS")
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], PREFIX.encode()).decode()
    except InvalidTag:
        raise DecryptionError(f"ciphertext under key {kid} does not verify") from None


def pii_hash(purpose: str, value: str) -> str:
    """Keyed hash of a personal number for lookups and link keys. ``purpose`` separates kinds of number
    (``account``, ``phone``, ``id_number``) so equal digits of different kinds never collide."""
    msg = f"{purpose}\x00{value}".encode()
    return hmac.new(keyring().hash_key, msg, hashlib.sha256).hexdigest()


def is_pii_hash(value: str) -> bool:
    return bool(_HASH.match(value or ""))


class EncryptedTextField(models.TextField):
    """A string stored as AES-GCM ciphertext and read back as the plain string.

    Only ``isnull`` lookups work (the ciphertext is randomised): look rows up through the :class:`HashField`
    beside it. An empty string stays empty (nothing to hide). A plain value still in the column (a row the
    encrypting migration has not reached) is read as it is."""

    description = "Encrypted text (AES-256-GCM)"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, str) and is_ciphertext(value):
            return decrypt(value)
        return value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and is_ciphertext(value):
            return decrypt(value)
        return super().to_python(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "" or is_ciphertext(str(value)):
            return value
        return encrypt(str(value))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None  # FieldError "Unsupported lookup": a ciphertext never equals anything
        return super().get_lookup(lookup_name)


class HashField(models.CharField):
    """The keyed hash of another field of the same model (``source``), kept up to date on every save."""

    description = "HMAC-SHA256 of another field"

    def __init__(self, *args: Any, source: str = "", purpose: str = "", **kwargs: Any) -> None:
        self.source = source
        self.purpose = purpose
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"], kwargs["purpose"] = self.source, self.purpose
        for key, default in (("max_length", 64), ("editable", False), ("blank", True), ("default", "")):
            if kwargs.get(key) == default:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        raw = getattr(model_instance, self.source) or ""
        value = pii_hash(self.purpose, str(raw)) if raw else ""
        setattr(model_instance, self.attname, value)
        return value
