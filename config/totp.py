"""Authenticator apps (django-otp TOTP devices) for any user: staff log in to the admin with one
(``config.admin_site``), merchants may answer a withdrawal's step-up with one (``risk.stepup``) and bind or replace
it on their security page.

A key is shown once, on enrolment, and a device counts only once a first code from it confirmed it.
"""

from __future__ import annotations

from typing import Any

import qrcode
import qrcode.image.svg
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from .errors import DomainError


def totp_device_confirmed(*, user_ids: list[int]) -> TOTPDevice | None:
    """The oldest confirmed authenticator of these users."""
    return TOTPDevice.objects.filter(user_id__in=user_ids, confirmed=True).order_by("pk").first()


def totp_device_of(user: Any) -> TOTPDevice | None:
    """The user's oldest confirmed authenticator (a staff login's second factor)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def totp_enrol_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """A fresh unconfirmed authenticator for the user, whose key the enrolment page shows once as a QR code.
    Earlier unconfirmed ones are deleted: a key somebody saw before is never the one that gets confirmed."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="提现动态口令", confirmed=False)


def totp_enrol_confirm(*, user: AbstractBaseUser, code: str, device_id: int | None = None) -> TOTPDevice:
    """Confirm enrolment with a first token from the app (of ``device_id``, else the user's newest pending
    device); the user's earlier confirmed devices are replaced. The web page asks for the password and the current
    factor before it shows a key (``security_totp``)."""
    with transaction.atomic():
        pending = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False)
        if device_id is not None:
            pending = pending.filter(pk=device_id)
        device = pending.order_by("-pk").first()
        if device is None or not device.verify_token(code.strip()):
            raise DomainError("verification_failed")
        TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return device


def totp_current_factor_verify(*, user: AbstractBaseUser, code: str) -> None:
    """The user's current authenticator answers ``code`` (replacing a device needs the one it replaces).
    django-otp throttles a device after wrong tokens; raises reauthentication_failed."""
    device = totp_device_confirmed(user_ids=[user.pk])
    token = code.strip()
    with transaction.atomic():
        if device is None or not token.isdigit():
            raise DomainError("reauthentication_failed")
        device = type(device).objects.select_for_update().get(pk=device.pk)
        allowed, _info = device.verify_is_allowed()
        ok = bool(allowed) and bool(device.verify_token(token))
    if not ok:
        raise DomainError("reauthentication_failed")


def totp_qr_svg(device: TOTPDevice) -> str:
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")
