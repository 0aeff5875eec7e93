"""Every API error is ``{"error": {"code", "message", "action", "details"}}`` with a 4xx/5xx status
(``config.catalogue.error_body``: the words and the action come from the catalogue, in the negotiated language)."""

from __future__ import annotations

import math
from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from accounts.api_auth import ApiLockedOut
from config.catalogue import error_body
from config.errors import DomainError
from config.security import lockout_minutes


def error_response(code: str, *, status_code: int, details: Any = None, message: str | None = None) -> Response:
    return Response(error_body(code, message=message, details=details or {}), status=status_code)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return error_response(exc.code, status_code=exc.status, details=exc.details, message=exc.message)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return error_response("not_found", status_code=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        response = error_response("authentication_failed", status_code=401, details={"reason": str(exc.detail)})
        response["WWW-Authenticate"] = "Bearer"
        return response
    if isinstance(exc, exceptions.PermissionDenied):
        return error_response("permission_denied", status_code=403)
    if isinstance(exc, ApiLockedOut):
        seconds = lockout_minutes(context["request"]._request if context.get("request") else None) * 60
        locked = error_response("login_locked", status_code=429, details={"retry_after": seconds})
        locked["Retry-After"] = str(max(1, seconds))
        return locked
    if isinstance(exc, exceptions.Throttled):
        wait = getattr(exc, "wait", None)
        throttled = error_response("rate_limited", status_code=429, details={"retry_after": wait})
        if wait is not None:
            throttled["Retry-After"] = str(max(1, math.ceil(wait)))
        return throttled
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return error_response("invalid_request", status_code=400, details={"body": str(exc.detail)})
    if isinstance(exc, exceptions.ValidationError):
        return error_response("invalid_request", status_code=400, details=exc.detail)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return error_response("invalid_request", status_code=405, details={"method": str(exc.detail)})
    fallback = exception_handler(exc, context)
    if fallback is not None:
        return error_response("invalid_request", status_code=fallback.status_code, details=fallback.data)
    return None
