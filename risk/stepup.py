"""Step-up verification: one-time SMS codes bound to one subject, expiring, with limited attempts, never
reusable. SMS goes through a provider adapter; the dev backend records the message for the demo page."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import DomainError

from .models import SmsMessage, StepUpChallenge

log = logging.getLogger(__name__)
CODE_TTL = timedelta(minutes=5)


def _hash(subject: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{subject}:{code}".encode(), hashlib.sha256).hexdigest()


class ConsoleSmsBackend:
    name = "console"

    def send(self, *, phone: str, text: str) -> None:
        SmsMessage.objects.create(phone=phone, text=text, backend=self.name)
        log.info("SMS to %s: %s", phone, text)


def sms_backend() -> ConsoleSmsBackend:
    return ConsoleSmsBackend()


def stepup_issue(*, subject: str, merchant_id: int, phone: str, now=None) -> StepUpChallenge:
    """Issue a fresh SMS code for ``subject``; earlier open codes for it stop working."""
    now = now or timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).update(expires_at=now)
        challenge = StepUpChallenge.objects.create(
            subject=subject,
            merchant_id=merchant_id,
            method=StepUpChallenge.Method.SMS,
            code_hash=_hash(subject, code),
            destination=phone,
            expires_at=now + CODE_TTL,
        )
        transaction.on_commit(
            lambda: sms_backend().send(
                phone=phone, text=f"【提现平台】您的提现验证码 {code}，5 分钟内有效。切勿告诉他人。"
            )
        )
    return challenge


def stepup_verify(*, subject: str, code: str, now=None) -> StepUpChallenge:
    """Consume the open challenge of ``subject`` if ``code`` matches. Raises verification_failed or
    verification_locked; a used code never verifies again. A wrong code is counted (committed) before the
    error is raised, so attempts cannot be reset by failing."""
    now = now or timezone.now()
    error: DomainError | None = None
    with transaction.atomic():
        challenge = StepUpChallenge.objects.select_for_update().filter(subject=subject).order_by("-created_at").first()
        if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
            raise DomainError("verification_failed")
        if challenge.attempts >= challenge.max_attempts:
            raise DomainError("verification_locked")
        challenge.attempts += 1
        if hmac.compare_digest(challenge.code_hash, _hash(subject, code.strip())):
            challenge.used_at = now
        elif challenge.attempts >= challenge.max_attempts:
            error = DomainError("verification_locked")
        else:
            error = DomainError(
                "verification_failed", details={"attempts_left": challenge.max_attempts - challenge.attempts}
            )
        challenge.save(update_fields=["attempts", "used_at"])
    if error is not None:
        raise error
    return challenge
