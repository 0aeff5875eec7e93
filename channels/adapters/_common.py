"""What the adapters share: config reading, one HTTP transport that turns network trouble into
``ChannelUnknownOutcome``, catalogue-driven errors, header normalising, statement CSV parsing."""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from channels import catalogue
from channels.base import ChannelRejected, ChannelUnknownOutcome, ConfigError, ErrorAction, PayoutStatus, StatementLine

DEFAULT_TIMEOUT = 10.0
DEFAULT_CALLBACK_MAX_AGE = 300


def setting(config: dict[str, Any], name: str, default: Any = None) -> Any:
    value = config.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"channel config needs {name!r}")
    return value


def material(config: dict[str, Any], name: str) -> str:
    """A secret named by the config: an environment variable in ``name + '_env'`` or a path in
    ``name + '_file'`` (inline as ``name`` for adapters built in tests; the admin refuses inline secrets)."""
    if config.get(name):
        return str(config[name]).strip()
    variable = config.get(name + "_env")
    if variable:
        value = os.environ.get(str(variable), "").strip()
        if not value:
            raise ConfigError(f"environment variable {variable!r} ({name}_env) is not set")
        return value
    path = config.get(name + "_file")
    if not path:
        raise ConfigError(f"channel config needs {name + '_file'!r} or {name + '_env'!r}")
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {name}_file {path!r}: {exc}")


def private_key(pem: str) -> rsa.RSAPrivateKey:
    """PEM, or the bare base64 body providers hand out (PKCS#8)."""
    if "-----BEGIN" not in pem:
        pem = f"-----BEGIN PRIVATE KEY-----\n{pem}\n-----END PRIVATE KEY-----\n"
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("expected an RSA private key")
    return key


def public_key(pem: str) -> rsa.RSAPublicKey:
    """PEM, or the bare base64 SubjectPublicKeyInfo body providers hand out."""
    if "-----BEGIN" not in pem:
        pem = f"-----BEGIN PUBLIC KEY-----\n{pem}\n-----END PUBLIC KEY-----\n"
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError("expected an RSA public key")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def lower_headers(headers: Any) -> dict[str, str]:
    """Header names lower-cased; also accepts Django's ``request.META`` (``HTTP_X_FOO`` -> ``x-foo``)."""
    out: dict[str, str] = {}
    for name, value in dict(headers).items():
        key = str(name)
        if key.startswith("HTTP_"):
            key = key[5:].replace("_", "-")
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = key.replace("_", "-")
        out[key.lower()] = str(value)
    return out


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased
    body: bytes


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the connection was never established (refused, no route, connect timeout): not one byte of the
    request left us, so the provider cannot have received it."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


class Transport:
    """One HTTP exchange. A timeout or a connection broken after it was established is an *unknown* outcome: the
    request may have arrived and been executed, so only a query settles it. A connection that was never made is
    a definite refusal (nothing was sent), which lets a payout leave a channel that is down."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        try:
            response = self.session.request(
                method, url, headers=headers, data=body or None, timeout=self.timeout, allow_redirects=False
            )
            content = response.content
        except requests.RequestException as exc:
            if _never_connected(exc):
                raise ChannelRejected(
                    f"{method} {url} could not connect: {exc}",
                    reason_code="channel_error",
                    provider_code="CONNECT_FAILED",
                    action=ErrorAction.RETRY,
                )
            if isinstance(exc, requests.Timeout):
                raise ChannelUnknownOutcome(
                    f"{method} {url} timed out after {self.timeout}s: {exc}", provider_code="TIMEOUT"
                )
            raise ChannelUnknownOutcome(f"{method} {url} failed: {exc}", provider_code="NETWORK_ERROR")
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content)


def error_for(provider: str, code: str, message: str = "") -> ChannelRejected | ChannelUnknownOutcome:
    """The exception a refused request becomes, by the catalogue: unknown codes query, the rest reject."""
    entry = catalogue.lookup(provider, code)
    text = f"{provider} {code}: {message}" if message else f"{provider} {code}"
    if entry.action == ErrorAction.QUERY:
        error = ChannelUnknownOutcome(text, provider_code=code)
        error.reason_code = entry.reason
        return error
    return ChannelRejected(text, reason_code=entry.reason, provider_code=code, action=entry.action)


def bad_response(provider: str, message: str) -> ChannelUnknownOutcome:
    """An answer we cannot trust (bad signature, unparseable): the request's fate is unknown."""
    error = ChannelUnknownOutcome(f"{provider}: {message}", provider_code="BAD_RESPONSE")
    error.reason_code = catalogue.lookup(provider, "BAD_RESPONSE").reason
    return error


def reason_for(provider: str, code: str) -> str:
    return catalogue.lookup(provider, code).reason if code else ""


STATEMENT_STATUS = {
    "SUCCESS": PayoutStatus.SUCCEEDED,
    "FAILED": PayoutStatus.FAILED,
    "RETURNED": PayoutStatus.RETURNED,
    "PROCESSING": PayoutStatus.PROCESSING,
}


def parse_statement(provider: str, content: bytes) -> list[StatementLine]:
    """The sandbox statement CSV: order_no, channel_reference, amount (fen), status, occurred_at (ISO)."""
    lines = []
    try:
        for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig"))):
            lines.append(
                StatementLine(
                    order_no=row["order_no"],
                    channel_reference=row["channel_reference"],
                    amount=int(row["amount"]),
                    status=STATEMENT_STATUS[row["status"]],
                    occurred_at=dt.datetime.fromisoformat(row["occurred_at"]),
                )
            )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ChannelRejected(
            f"{provider} statement unreadable: {exc!r}",
            reason_code="channel_response_invalid",
            provider_code="BAD_STATEMENT",
            action=ErrorAction.RETRY,
        )
    return lines
