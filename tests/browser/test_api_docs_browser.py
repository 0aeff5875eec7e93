"""The API docs page in a real Chromium, under the site's CSP: Swagger UI loads from our own static files and
renders every operation of /api/v1/schema, with no CSP violation and no JavaScript error.

Needs Debian's /usr/bin/chromium (never a browser downloaded by ``playwright install``); skipped without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
]


def test_swagger_ui_renders_every_operation_under_the_csp(live_server, transactional_db):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda msg: console.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda req: requests.append(req.url))
        page.goto(f"{live_server.url}/api/v1/")
        page.wait_for_selector(".opblock-summary-path")
        paths = sorted(set(page.locator(".opblock-summary-path").all_inner_texts()))
        title = page.locator(".info .title").inner_text()
        browser.close()
    connections.close_all()
    assert [p.replace("\u200b", "") for p in paths] == [
        "/api/v1/payout-accounts",
        "/api/v1/payout-accounts/{id}",
        "/api/v1/quotes",
        "/api/v1/wallet",
        "/api/v1/withdrawals",
        "/api/v1/withdrawals/{id}",
        "/api/v1/withdrawals/{id}/cancel",
        "/api/v1/withdrawals/{id}/events",
    ]
    assert "Withdrawal platform partner API" in title
    assert not [m for m in console if "Content Security Policy" in m], console
    assert not errors, errors
    assert all(url.startswith(live_server.url) for url in requests), requests  # nothing from elsewhere
