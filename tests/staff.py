"""Staff personas for admin tests: a user in a role group, logged in with a verified second factor."""

from __future__ import annotations

from django.test import Client

from accounts.models import User


def staff_user(username: str, role: str | None) -> User:
    """A staff user in the ``role`` group (``None``: a superuser; ``"merchant"``: a merchant login, not staff)."""
    from django.contrib.auth.models import Group

    from accounts.roles import roles_sync

    if role is None:
        return User.objects.create_superuser(username=username, password="pass-1234", email="")
    if not Group.objects.filter(name=role).exists():
        roles_sync()  # transactional tests flush the groups the migrations made
    user = User.objects.create_user(username=username, password="pass-1234", is_staff=role != "merchant")
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # fresh: the permission cache sees the group


def staff_client(user: User) -> Client:
    """Logged in as ``user`` with a confirmed TOTP device verified in the session (the admin asks for both)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="test", defaults={"confirmed": True})
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client
