"""Language: the merchant pages and the admin are written in zh-Hans, so they always render in it (a browser
asking for English would otherwise get English error messages inside Chinese pages). The partner API
negotiates from Accept-Language (zh-Hans default, English on request)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation


class LanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path.startswith("/api/")
        translation.activate(translation.get_language_from_request(request) if api else "zh-hans")
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        translation.deactivate()
        return response
