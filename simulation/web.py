"""The platform's HTTP surface, in process: Django's test client runs the real URL routing, middleware and
views. Used for the channels' callbacks and for the merchant pages a simulated merchant clicks through."""

from __future__ import annotations

import re
import time
import traceback
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.test import Client

if TYPE_CHECKING:
    from .observer import Observer

_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
_SELECTED = re.compile(r'<option value="(?P<value>\d+)" selected>')


class PlatformWeb:
    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self._anonymous = Client()
        self._merchants: dict[int, Client] = {}

    # --- callbacks -----------------------------------------------------------------------------------------
    def post_callback(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """What the provider's HTTP client gets back: the status code (500 if the view raised)."""
        path = urlsplit(url).path
        content_type = headers.get("Content-Type") or headers.get("content-type") or "application/octet-stream"
        extra = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        started = time.perf_counter()
        try:
            response = self._anonymous.post(path, data=body, content_type=content_type, headers=extra)
        except Exception as exc:
            self.observer.finding(
                "callback_error",
                f"POST {path} raised {type(exc).__name__}: {exc}",
                detail=traceback.format_exc(),
                key=f"{type(exc).__name__}:{str(exc)[:80]}",
            )
            return 500
        finally:
            self.observer.wall["callbacks"] += time.perf_counter() - started
        outcome = response.headers.get("X-Callback-Outcome", "")
        self.observer.count(f"callback_{outcome or response.status_code}")
        return int(response.status_code)

    # --- merchant pages ------------------------------------------------------------------------------------
    def merchant(self, user: Any) -> Client:
        client = self._merchants.get(user.pk)
        if client is None:
            client = self._merchants[user.pk] = Client()
            client.force_login(user)
        return client

    def retry_form(self, user: Any, withdrawal_id: int) -> dict[str, str] | None:
        """Open the withdrawal's page and read its one-click retry form, or None when the page offers none."""
        response = self.merchant(user).get(f"/withdrawals/{withdrawal_id}/")
        if response.status_code != 200:
            return None
        html = response.content.decode()
        if f'action="/withdrawals/{withdrawal_id}/retry/"' not in html:
            return None
        fields = {m["name"]: m["value"] for m in _HIDDEN.finditer(html)}
        selected = _SELECTED.search(html)
        if "idempotency_key" not in fields or "expected_fee" not in fields or selected is None:
            return None
        return {
            "idempotency_key": fields["idempotency_key"],
            "expected_fee": fields["expected_fee"],
            "payout_account": selected["value"],
            "device": "",
        }

    def retry_submit(self, user: Any, withdrawal_id: int, form: dict[str, str]) -> int | None:
        """Click 重新提现 with ``form``; the new withdrawal's id when the page went to one, else None."""
        response = self.merchant(user).post(f"/withdrawals/{withdrawal_id}/retry/", data=form)
        location = response.headers.get("Location", "") if response.status_code in (301, 302) else ""
        match = re.fullmatch(r"/withdrawals/(\d+)/", location)
        if match and int(match.group(1)) != withdrawal_id:
            return int(match.group(1))
        return None
