"""Step-up verification bound to one subject (e.g. "withdrawal:42"), expiring, never reusable: an SMS one-time
code (``risk.sms`` provider), a TOTP code from the merchant's enrolled authenticator (django-otp; a token is
accepted once), or a face check through a provider hook.

What holds it shut:
- codes are kept only as an HMAC keyed with the secret key, never logged, and ``SmsMessage`` keeps a masked text;
- a new SMS code for the same subject only after ``STEPUP_SMS_COOLDOWN_SECONDS`` (60 s), and at most
  ``STEPUP_SMS_DAILY_PER_SUBJECT`` codes per subject and ``STEPUP_SMS_DAILY_PER_PHONE`` per phone a day;
- wrong answers count across every challenge of the subject (a resend gives no new guesses): at
  ``STEPUP_MAX_FAILURES`` the subject is exhausted — no more guesses, and the registered handlers run (a withdrawal
  goes to manual review).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.errors import DomainError

from .models import FaceCheckSession, SmsMessage, StepUpChallenge
from .sms import SmsProviderError, mask_phone, masked_text, sms_provider

log = logging.getLogger(__name__)
CODE_TTL = timedelta(minutes=5)
FACE_TTL = timedelta(minutes=10)

_exhausted_handlers: list[Callable[[str], None]] = []


def stepup_exhausted_register(handler: Callable[[str], None]) -> None:
    """A higher layer reacts when a subject runs out of guesses (withdrawals: to manual review)."""
    if handler not in _exhausted_handlers:
        _exhausted_handlers.append(handler)


def _hash(subject: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{subject}:{code}".encode(), hashlib.sha256).hexdigest()


def phone_ref(phone: str) -> str:
    """What a challenge keeps of the phone it was sent to: a keyed hash, enough to count codes per phone."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"stepup-phone:{phone.strip()}".encode(), hashlib.sha256)
    return "sms:" + digest.hexdigest()[:32]


def _day_start(now: datetime) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _failures(subject: str) -> int:
    """Wrong answers given for ``subject`` over all its challenges (a used challenge's last attempt was right)."""
    open_ = StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).aggregate(n=Sum("attempts"))["n"]
    used = StepUpChallenge.objects.filter(subject=subject, used_at__isnull=False).aggregate(n=Sum("attempts"))["n"]
    used_count = StepUpChallenge.objects.filter(subject=subject, used_at__isnull=False).count()
    return int(open_ or 0) + int(used or 0) - used_count


def stepup_failures_left(*, subject: str) -> int:
    return max(0, settings.STEPUP_MAX_FAILURES - _failures(subject))


def _check_send_limits(subject: str, ref: str, now: datetime) -> None:
    """Raise if another SMS for ``subject`` / this phone would exceed the cooldown or a daily cap. Called with the
    subject's challenges locked, so two resends cannot both pass."""
    if _failures(subject) >= settings.STEPUP_MAX_FAILURES:
        raise DomainError("verification_exhausted")
    sms = StepUpChallenge.objects.filter(method=StepUpChallenge.Method.SMS)
    last = sms.filter(subject=subject).order_by("-created_at").values_list("created_at", flat=True).first()
    if last is None:
        return  # the first code of a subject is always sent; the caps hold back resends
    cooldown = timedelta(seconds=settings.STEPUP_SMS_COOLDOWN_SECONDS)
    if now - last < cooldown:
        wait = int((cooldown - (now - last)).total_seconds()) + 1
        raise DomainError("stepup_resend_too_soon", details={"retry_after": wait})
    day = _day_start(now)
    if sms.filter(subject=subject, created_at__gte=day).count() >= settings.STEPUP_SMS_DAILY_PER_SUBJECT:
        raise DomainError("stepup_send_limit", details={"limit": "per_subject"})
    if sms.filter(destination=ref, created_at__gte=day).count() >= settings.STEPUP_SMS_DAILY_PER_PHONE:
        raise DomainError("stepup_send_limit", details={"limit": "per_phone"})


def _deliver(*, phone: str, code: str, merchant_id: int | None, out_id: str) -> None:
    """Hand the code to the provider (after commit). A provider failure is logged without the code or the full
    number; the merchant can ask for a new code once the cooldown has passed."""
    provider = sms_provider()
    try:
        receipt = provider.send(phone=phone, params={"code": code}, out_id=out_id)
    except SmsProviderError as exc:
        log.warning(
            "SMS to %s via %s failed (%s, permanent=%s)",
            mask_phone(phone),
            provider.name,
            exc.code or exc,
            exc.permanent,
        )
        return
    SmsMessage.objects.create(phone=phone, text=masked_text(), backend=provider.name, merchant_id=merchant_id)
    log.info("SMS code sent to %s via %s (%s)", mask_phone(phone), provider.name, receipt.message_id)


def stepup_issue(*, subject: str, merchant_id: int, phone: str, now: datetime | None = None) -> StepUpChallenge:
    """Issue a fresh SMS code for ``subject``; earlier open codes for it stop working. Refused within the
    cooldown (``stepup_resend_too_soon`` with ``retry_after``), beyond a daily cap (``stepup_send_limit``) and once
    the subject is exhausted (``verification_exhausted``)."""
    now = now or timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    ref = phone_ref(phone)
    with transaction.atomic():
        list(StepUpChallenge.objects.select_for_update().filter(subject=subject).values_list("pk", flat=True))
        _check_send_limits(subject, ref, now)
        StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).update(expires_at=now)
        challenge = StepUpChallenge.objects.create(
            subject=subject,
            merchant_id=merchant_id,
            method=StepUpChallenge.Method.SMS,
            code_hash=_hash(subject, code),
            destination=ref,
            expires_at=now + CODE_TTL,
            max_attempts=settings.STEPUP_MAX_FAILURES,
        )
        out_id = f"m{merchant_id}-c{challenge.pk}"
        transaction.on_commit(lambda: _deliver(phone=phone, code=code, merchant_id=merchant_id, out_id=out_id))
    return challenge


def stepup_sms_retry_after(*, subject: str, now: datetime | None = None) -> int:
    """Seconds until a new SMS code may be sent for ``subject`` (0: now)."""
    now = now or timezone.now()
    last = (
        StepUpChallenge.objects.filter(subject=subject, method=StepUpChallenge.Method.SMS)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if last is None:
        return 0
    left = timedelta(seconds=settings.STEPUP_SMS_COOLDOWN_SECONDS) - (now - last)
    return max(0, int(left.total_seconds()) + (1 if left.total_seconds() > 0 else 0))


def _open_challenge(subject: str, now: datetime) -> StepUpChallenge:
    challenge = StepUpChallenge.objects.select_for_update().filter(subject=subject).order_by("-created_at").first()
    if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
        raise DomainError("verification_failed")
    if _failures(subject) >= settings.STEPUP_MAX_FAILURES:
        raise DomainError("verification_exhausted")
    if challenge.attempts >= challenge.max_attempts or challenge.provider_status == "failed":
        raise DomainError("verification_locked")
    return challenge


def _after_failure(subject: str) -> DomainError | None:
    """Once the subject has no guesses left: the error to raise, and the handlers are told (after commit)."""
    if _failures(subject) < settings.STEPUP_MAX_FAILURES:
        return None
    for handler in list(_exhausted_handlers):
        transaction.on_commit(lambda handler=handler: handler(subject), robust=True)  # type: ignore[misc]
    return DomainError("verification_exhausted")


def stepup_verify(*, subject: str, code: str, now: datetime | None = None) -> StepUpChallenge:
    """Consume the open challenge of ``subject`` if ``code`` matches (SMS code or TOTP token). Raises
    verification_failed (with ``attempts_left``), verification_locked, or verification_exhausted once the wrong
    answers over all the subject's challenges reach ``STEPUP_MAX_FAILURES``. A used code never verifies again. A
    wrong code is counted (committed) before the error is raised, so attempts cannot be reset by failing."""
    now = now or timezone.now()
    error: DomainError | None = None
    with transaction.atomic():
        challenge = _open_challenge(subject, now)
        if challenge.method == StepUpChallenge.Method.FACE:
            raise DomainError("verification_failed", details={"method": "face"})
        if challenge.method == StepUpChallenge.Method.TOTP and not _totp_allowed(challenge):
            # django-otp holds the device back for a few seconds after a wrong token: not a guess, not counted
            raise DomainError("verification_failed", details={"throttled": True})
        challenge.attempts += 1
        if challenge.method == StepUpChallenge.Method.TOTP:
            ok = _totp_ok(challenge, code.strip())
        else:
            ok = hmac.compare_digest(challenge.code_hash, _hash(subject, code.strip()))
        if ok:
            challenge.used_at = now
        challenge.save(update_fields=["attempts", "used_at"])
        if not ok:
            error = _after_failure(subject) or DomainError(
                "verification_failed", details={"attempts_left": stepup_failures_left(subject=subject)}
            )
    if error is not None:
        raise error
    return challenge


# --- TOTP (django-otp) ------------------------------------------------------------------------------------
def stepup_issue_totp(
    *, subject: str, merchant_id: int, device_id: int, now: datetime | None = None
) -> StepUpChallenge:
    """Ask for a TOTP code from the enrolled device for ``subject``; earlier open challenges stop working."""
    now = now or timezone.now()
    with transaction.atomic():
        if _failures(subject) >= settings.STEPUP_MAX_FAILURES:
            raise DomainError("verification_exhausted")
        StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).update(expires_at=now)
        return StepUpChallenge.objects.create(
            subject=subject,
            merchant_id=merchant_id,
            method=StepUpChallenge.Method.TOTP,
            destination=str(device_id),
            expires_at=now + CODE_TTL,
            max_attempts=settings.STEPUP_MAX_FAILURES,
        )


def _totp_allowed(challenge: StepUpChallenge) -> bool:
    device = TOTPDevice.objects.filter(pk=int(challenge.destination or 0), confirmed=True).first()
    return device is None or bool(device.verify_is_allowed()[0])


def _totp_ok(challenge: StepUpChallenge, code: str) -> bool:
    device = TOTPDevice.objects.select_for_update().filter(pk=int(challenge.destination or 0), confirmed=True).first()
    # verify_token remembers the last accepted time step: the same token is refused the second time.
    return device is not None and code.isdigit() and bool(device.verify_token(code))


# --- face check -------------------------------------------------------------------------------------------
class SandboxFaceProvider:
    """Face-check provider hook. A real one (e.g. a liveness + photo comparison SDK) starts a session the
    merchant completes on the phone and answers ``pending`` / ``passed`` / ``failed`` for it; the sandbox keeps
    its sessions in FaceCheckSession and the demo page plays the merchant's part (``sandbox_capture``)."""

    name = "sandbox"

    def start(self, *, subject: str) -> str:
        session_id = f"face_{secrets.token_hex(8)}"
        FaceCheckSession.objects.create(session_id=session_id, subject=subject)
        return session_id

    def result(self, *, session_id: str) -> str:
        return FaceCheckSession.objects.filter(session_id=session_id).values_list("status", flat=True).first() or (
            "failed"
        )

    def sandbox_capture(self, *, session_id: str, passed: bool) -> None:
        FaceCheckSession.objects.filter(session_id=session_id, status="pending").update(
            status="passed" if passed else "failed"
        )


_face_provider = SandboxFaceProvider()


def face_provider() -> SandboxFaceProvider:
    return _face_provider


def face_check_available() -> bool:
    """Only with a configured provider (``FACE_PROVIDER``). The sandbox one passes whoever asks it to, so
    settings refuse it in production; without a real provider the face option is not offered."""
    return _face_provider.name == settings.FACE_PROVIDER


def face_sandbox_controls_enabled() -> bool:
    """Whether the page may play the merchant's capture (the pass / fail buttons): demo mode only."""
    return bool(settings.DEMO_MODE) and face_check_available()


def stepup_face_start(*, subject: str, merchant_id: int, now: datetime | None = None) -> StepUpChallenge:
    """Start a face check for ``subject`` (replacing any open challenge, e.g. an SMS code)."""
    now = now or timezone.now()
    if not face_check_available():
        raise DomainError("face_check_unavailable")
    with transaction.atomic():
        list(StepUpChallenge.objects.select_for_update().filter(subject=subject).values_list("pk", flat=True))
        if _failures(subject) >= settings.STEPUP_MAX_FAILURES:
            raise DomainError("verification_exhausted")
        StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).update(expires_at=now)
        session_id = face_provider().start(subject=subject)
        return StepUpChallenge.objects.create(
            subject=subject,
            merchant_id=merchant_id,
            method=StepUpChallenge.Method.FACE,
            destination=session_id,
            provider_status="pending",
            expires_at=now + FACE_TTL,
            max_attempts=settings.STEPUP_MAX_FAILURES,
        )


def stepup_face_complete(*, subject: str, now: datetime | None = None) -> StepUpChallenge:
    """Ask the provider how the open face check ended: passed consumes it (once); failed counts as one wrong
    answer of the subject and closes the session (a new one is needed); pending raises verification_failed
    with ``pending``."""
    now = now or timezone.now()
    error: DomainError | None = None
    with transaction.atomic():
        challenge = _open_challenge(subject, now)
        if challenge.method != StepUpChallenge.Method.FACE:
            raise DomainError("verification_failed", details={"method": challenge.method})
        status = face_provider().result(session_id=challenge.destination)
        challenge.provider_status = status
        if status == "passed":
            challenge.used_at = now
        elif status == "failed":
            challenge.attempts += 1  # provider_status "failed" closes the session
        else:
            error = DomainError("verification_failed", details={"face": "pending"})
        challenge.save(update_fields=["attempts", "used_at", "provider_status"])
        if status == "failed":
            error = _after_failure(subject) or DomainError("verification_failed", details={"face": "failed"})
    if error is not None:
        raise error
    return challenge


def totp_enrol_subject(*, user_id: int, now: datetime | None = None) -> str:
    """The step-up subject of "prove it is you before binding an authenticator" (SMS to the KYC phone). One
    per user and day: wrong answers and resends are limited like a withdrawal's, and start afresh tomorrow."""
    return f"totp_enrol:{user_id}:{timezone.localdate(now or timezone.now()):%Y%m%d}"
