"""Security issue, finding 6: production defaults. Each production case starts ``config.settings`` in a fresh
process with a production environment (DJANGO_DEBUG=0, none of the test suite's allowances), the way a server
starts."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
# What the test run adds to the environment that a production server would not have.
TEST_ONLY = {
    "DJANGO_TESTING",
    "DJANGO_SECRET_KEY",
    "SMS_PROVIDER",
    "FIELD_ENCRYPTION_DEV_KEYS",
    "DEMO_MODE",
    "DJANGO_DEBUG",
    "FACE_PROVIDER",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # the browser tests set it for Playwright's event loop
}


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "pay.example.com",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://pay.example.com",
            "SMS_PROVIDER": "aliyun",
            "ALIYUN_SMS_ACCESS_KEY_ID": "LTAI-production-id",
            "ALIYUN_SMS_ACCESS_KEY_SECRET": "production-secret",
            "ALIYUN_SMS_SIGN_NAME": "卡盟提现",
            "ALIYUN_SMS_TEMPLATE_CODE": "SMS_123456789",
            "FIELD_ENCRYPTION_KEYS": _key(),
            "FIELD_HASH_KEY": _key(),
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args], env)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY must be set with DJANGO_DEBUG=0"),
        ({"DJANGO_SECRET_KEY": "dev-only-insecure-key-change-me"}, "DJANGO_SECRET_KEY must be set with DJANGO_DEBUG=0"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY is too weak"),
        ({"DEMO_MODE": "1"}, "DEMO_MODE=1 needs DJANGO_DEBUG=1"),
        ({"SMS_PROVIDER": None}, "SMS_PROVIDER must be aliyun in production"),
        ({"SMS_PROVIDER": "memory"}, "SMS_PROVIDER must be aliyun in production"),
        ({"ALIYUN_SMS_TEMPLATE_CODE": None}, "SMS_PROVIDER=aliyun needs ALIYUN_SMS_TEMPLATE_CODE"),
        ({"ALIYUN_SMS_ENDPOINT": "http://sms.example.com/"}, "must be https://"),
        ({"FACE_PROVIDER": "sandbox"}, "FACE_PROVIDER=sandbox passes anyone"),
    ],
)
def test_production_refuses_to_start_unsafe(overrides, message):
    result = run([sys.executable, "-c", "import django; django.setup()"], production_env(**overrides))
    assert result.returncode != 0
    assert message in result.stderr


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


PROBE = textwrap.dedent(
    """
    import json, django
    django.setup()
    from django.test import Client
    c = Client(HTTP_HOST="pay.example.com")
    plain = c.get("/login/")
    page = c.get("/login/", secure=True)
    print(json.dumps({
        "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
        "status": page.status_code, "headers": dict(page.headers),
        "csrf_secure": bool(page.cookies["csrftoken"]["secure"]),
        "probe": c.get("/healthz/live").status_code,
    }))
    """
)


def test_production_pages_are_https_only_with_hsts_csp_and_secure_cookies():
    result = run([sys.executable, "-c", PROBE], production_env())
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert (seen["plain_status"], seen["plain_location"]) == (301, "https://pay.example.com/login/")
    assert seen["probe"] == 200  # load balancer probes stay on plain HTTP
    headers = seen["headers"]
    assert seen["status"] == 200 and seen["csrf_secure"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    csp = headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "frame-ancestors 'none'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_pages_run_no_inline_script(client, settings):
    """CSP allows scripts from our origin only: no page may rely on an inline script or event handler."""
    import re

    templates = list((ROOT / "templates").rglob("*.html"))
    assert templates
    for path in templates:
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path
    response = Client().get("/login/")
    assert "script-src 'self'" in response["Content-Security-Policy"]


# --- demo data only in demo mode --------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_seed_demo_refuses_outside_demo_mode(sandbox_channel):
    from accounts.models import User

    with pytest.raises(CommandError, match="only in demo mode"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not User.objects.exists()
    with pytest.raises(CommandError, match="DEMO_MODE=1"):
        call_command("run_platform", "--no-seed")


@pytest.mark.django_db(transaction=True)
def test_demo_api_keys_work_only_in_demo_mode(sandbox_channel, settings):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    settings.DEMO_MODE = True
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "TOTP seed" in out.getvalue()
    assert (
        TOTPDevice.objects.filter(user__is_staff=True, confirmed=True).count()
        == User.objects.filter(is_staff=True).count()
    )
    key = next(line.split("API key ")[1].strip() for line in out.getvalue().splitlines() if "alice" in line)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/wallet").status_code == 200
    settings.DEMO_MODE = False  # the same database served by a production configuration
    refused = api.get("/api/v1/wallet")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "authentication_failed"
