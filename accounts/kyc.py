"""KYC providers: real-name (two elements: name + identity number) and bank-card four elements (name, identity
number, card, phone), one small class per provider with a common surface (Healthchecks' transports shape).

A provider answers with a :class:`KycResult` of match flags, or raises :class:`KycProviderError` whose
``permanent`` says whether asking again can help (a bad request, an exhausted contract: permanent; a timeout
or a 5xx: transient, retry later).

The real providers (公安部 NCIIC relays and UnionPay four-element verification resold by e.g. Aliyun, Tencent
Cloud, Jingdong Wanxiang) answer JSON shaped roughly like::

    {"code": "0", "message": "成功", "requestId": "7d1c…",
     "result": {"res": "1", "description": "一致",            # 1 match, 2 mismatch, 3 no record
                "details": {"name": "1", "idcard": "1", "bankcard": "1", "mobile": "1"}}}

``code`` != "0" is an error (quota, bad parameters: permanent; "system busy": transient). An adapter maps
that onto :class:`KycResult`; the sandbox below produces the same flags deterministically from the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from .identity import id_number_valid, normalise_name


class KycProviderError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class KycResult:
    matched: bool  # every element checked agrees with the authority's record
    name_match: bool
    id_number_match: bool
    card_match: bool | None = None  # None: not part of this check
    phone_match: bool | None = None
    provider: str = ""
    request_id: str = ""
    raw: dict[str, object] = field(default_factory=dict)


class KycProvider(Protocol):
    name: str

    def verify_real_name(self, name: str, id_number: str) -> KycResult: ...

    def verify_four_elements(self, name: str, id_number: str, card: str, phone: str) -> KycResult: ...


# Sandbox conventions (documented for demos and tests):
# - a valid identity number (check character) matches any non-empty name; an invalid one has no record;
# - a name containing "不符" does not match;
# - a phone ending in "0000" is registered to someone else; a card ending in "0000" belongs to someone else;
# - a name containing "超时" makes the provider time out (a transient error).
class SandboxKycProvider:
    name = "sandbox"

    def _request_id(self, *parts: str) -> str:
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def _base(self, name: str, id_number: str) -> tuple[bool, bool]:
        if "超时" in name:
            raise KycProviderError("sandbox: provider timed out", permanent=False)
        if not normalise_name(name):
            raise KycProviderError("sandbox: name is required", permanent=True)
        id_ok = id_number_valid(id_number)
        return "不符" not in name, id_ok

    def verify_real_name(self, name: str, id_number: str) -> KycResult:
        name_ok, id_ok = self._base(name, id_number)
        return KycResult(
            matched=name_ok and id_ok,
            name_match=name_ok,
            id_number_match=id_ok,
            provider=self.name,
            request_id=self._request_id("2e", name, id_number),
        )

    def verify_four_elements(self, name: str, id_number: str, card: str, phone: str) -> KycResult:
        name_ok, id_ok = self._base(name, id_number)
        card_ok = bool(card) and not card.endswith("0000")
        phone_ok = bool(phone) and not phone.endswith("0000")
        return KycResult(
            matched=name_ok and id_ok and card_ok and phone_ok,
            name_match=name_ok,
            id_number_match=id_ok,
            card_match=card_ok,
            phone_match=phone_ok,
            provider=self.name,
            request_id=self._request_id("4e", name, id_number, card, phone),
        )


_provider: KycProvider = SandboxKycProvider()


def kyc_provider() -> KycProvider:
    return _provider


def kyc_provider_set(provider: KycProvider) -> KycProvider:
    """Swap the provider (deployment wiring, tests); returns the previous one."""
    global _provider
    previous, _provider = _provider, provider
    return previous
