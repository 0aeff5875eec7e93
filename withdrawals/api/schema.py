"""OpenAPI description of the partner API's authentication and bodies (drf-spectacular)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_<prefix>_<secret>",
            "description": "API key of a merchant. Repeated failures lock the key and the address (429 login_locked).",
        }


WalletBody = inline_serializer(
    name="Wallet",
    fields={
        "currency": serializers.CharField(),
        "available": serializers.IntegerField(),
        "held": serializers.IntegerField(),
        "pending": serializers.IntegerField(),
        "reserve": serializers.IntegerField(),
    },
)
ErrorBody = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)
