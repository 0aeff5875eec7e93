"""Step-up verification bound to one subject (e.g. "withdrawal:42"), expiring, with limited attempts, never
reusable: an SMS one-time code (provider adapter; the dev backend records the message for the demo page), a
TOTP code from the merchant's enrolled authenticator (django-otp; a token is accepted once), or a face check
through a provider hook (sandbox provider here)."""

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

from .models import FaceCheckSession, SmsMessage, StepUpChallenge

log = logging.getLogger(__name__)
CODE_TTL = timedelta(minutes=5)
FACE_TTL = timedelta(minutes=10)


def _hash(subject: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{subject}:{code}".encode(), hashlib.sha256).hexdigest()


class ConsoleSmsBackend:
    name = "console"

    def send(self, *, phone: str, text: str, merchant_id: int | None = None) -> None:
        SmsMessage.objects.create(phone=phone, text=text, backend=self.name, merchant_id=merchant_id)
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
                merchant_id=merchant_id,
                phone=phone,
                text=f"【提现平台】您的提现验证码 {code}，5 分钟内有效。切勿告诉他人。",
            )
        )
    return challenge


def _open_challenge(subject: str, now) -> StepUpChallenge:  # type: ignore[no-untyped-def]
    challenge = StepUpChallenge.objects.select_for_update().filter(subject=subject).order_by("-created_at").first()
    if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
        raise DomainError("verification_failed")
    if challenge.attempts >= challenge.max_attempts:
        raise DomainError("verification_locked")
    return challenge


def stepup_verify(*, subject: str, code: str, now=None) -> StepUpChallenge:  # type: ignore[no-untyped-def]
    """Consume the open challenge of ``subject`` if ``code`` matches (SMS code or TOTP token). Raises
    verification_failed or verification_locked; a used code never verifies again. A wrong code is counted
    (committed) before the error is raised, so attempts cannot be reset by failing."""
    now = now or timezone.now()
    error: DomainError | None = None
    with transaction.atomic():
        challenge = _open_challenge(subject, now)
        if challenge.method == StepUpChallenge.Method.FACE:
            raise DomainError("verification_failed", details={"method": "face"})
        challenge.attempts += 1
        if challenge.method == StepUpChallenge.Method.TOTP:
            ok = _totp_ok(challenge, code.strip())
        else:
            ok = hmac.compare_digest(challenge.code_hash, _hash(subject, code.strip()))
        if ok:
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


# --- TOTP (django-otp) ------------------------------------------------------------------------------------
def totp_device_confirmed(*, user_ids: list[int]):  # type: ignore[no-untyped-def]
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user_id__in=user_ids, confirmed=True).order_by("pk").first()


def totp_enrol_start(*, user):  # type: ignore[no-untyped-def]
    """The user's unconfirmed authenticator (made once), whose key the enrolment page shows as a QR code."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name="提现动态口令", confirmed=False)


def totp_enrol_confirm(*, user, code: str):  # type: ignore[no-untyped-def]
    """Confirm enrolment with a first token from the app; earlier confirmed devices of the user are replaced."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
        if device is None or not device.verify_token(code.strip()):
            raise DomainError("verification_failed")
        TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return device


def totp_qr_svg(device) -> str:  # type: ignore[no-untyped-def]
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def stepup_issue_totp(*, subject: str, merchant_id: int, device_id: int, now=None) -> StepUpChallenge:  # type: ignore[no-untyped-def]
    """Ask for a TOTP code from the enrolled device for ``subject``; earlier open challenges stop working."""
    now = now or timezone.now()
    with transaction.atomic():
        StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).update(expires_at=now)
        return StepUpChallenge.objects.create(
            subject=subject,
            merchant_id=merchant_id,
            method=StepUpChallenge.Method.TOTP,
            destination=str(device_id),
            expires_at=now + CODE_TTL,
        )


def _totp_ok(challenge: StepUpChallenge, code: str) -> bool:
    from django_otp.plugins.otp_totp.models import TOTPDevice

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


def stepup_face_start(*, subject: str, merchant_id: int, now=None) -> StepUpChallenge:  # type: ignore[no-untyped-def]
    """Start a face check for ``subject`` (replacing any open challenge, e.g. an SMS code)."""
    now = now or timezone.now()
    with transaction.atomic():
        StepUpChallenge.objects.filter(subject=subject, used_at__isnull=True).update(expires_at=now)
        session_id = face_provider().start(subject=subject)
        return StepUpChallenge.objects.create(
            subject=subject,
            merchant_id=merchant_id,
            method=StepUpChallenge.Method.FACE,
            destination=session_id,
            provider_status="pending",
            expires_at=now + FACE_TTL,
        )


def stepup_face_complete(*, subject: str, now=None) -> StepUpChallenge:  # type: ignore[no-untyped-def]
    """Ask the provider how the open face check ended: passed consumes it (once); failed counts an attempt
    and needs a new session; pending raises verification_failed with ``pending``."""
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
            challenge.attempts = challenge.max_attempts  # a failed face check is final for this session
            error = DomainError("verification_failed", details={"face": "failed"})
        else:
            error = DomainError("verification_failed", details={"face": "pending"})
        challenge.save(update_fields=["attempts", "used_at", "provider_status"])
    if error is not None:
        raise error
    return challenge
