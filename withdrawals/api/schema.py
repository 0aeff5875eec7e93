"""OpenAPI description of the partner API's authentication and bodies (drf-spectacular)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
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


class ActionSerializer(serializers.Serializer):
    """The action to suggest: ``{"code": "retry", "text": "重试"}`` (config.catalogue.ACTIONS)."""

    code = serializers.CharField(help_text="what the user can do: a key of config.catalogue.ACTIONS")
    text = serializers.CharField(help_text="the same in words, in the request's language")

    class Meta:
        ref_name = "Action"


ActionBody = ActionSerializer()
ErrorBody = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "action": ActionBody,
                "details": serializers.DictField(),
            },
        )
    },
)
