"""Who made an admin-edited change, for django-simple-history. API clients are not users: recorded as None."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model


def history_user(instance: Any = None, request: Any = None, **kwargs: Any) -> Any:
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) and user.is_authenticated else None
