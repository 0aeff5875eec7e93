"""Security issue, finding 4: lockout on every door (merchant login, admin login and its code step, partner API
keys), per IP and per account, with an unlock path in the admin; a second factor for every staff login, with an
enrolment flow for new staff; idle sessions end."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp

from accounts.services import api_key_create
from tests.factories import reviewer
from tests.staff import staff_client, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 10


def _merchant_login(client: Client, password: str, ip: str = "10.0.0.1"):
    return client.post("/login/", {"username": "alice", "password": password}, REMOTE_ADDR=ip)


def _admin_login(client: Client, username: str, password: str, ip: str = "10.0.0.2"):
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    )


# --- lockout ----------------------------------------------------------------------------------------------
def test_ten_wrong_passwords_lock_the_merchant_login_even_for_the_right_one(merchant_alice):
    client = Client()
    for _ in range(LIMIT - 1):
        assert _merchant_login(client, "wrong").status_code == 200  # the form again, with the error
    locked = _merchant_login(client, "wrong")
    assert locked.status_code == 429 and "登录已临时锁定" in locked.content.decode()
    right = _merchant_login(client, "pass-1234")
    assert right.status_code == 429 and "30 分钟" in right.content.decode() and "联系平台客服" in right.content.decode()
    assert "_auth_user_id" not in client.session
    # Per account: another address does not help the guesser ...
    assert _merchant_login(Client(), "pass-1234", ip="10.9.9.9").status_code == 429
    # ... and after the lockout time it opens again.
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert _merchant_login(Client(), "pass-1234", ip="10.9.9.9").status_code == 302


def test_one_address_guessing_many_accounts_is_locked_per_ip(merchant_alice):
    client = Client()
    for n in range(LIMIT):
        client.post("/login/", {"username": f"nobody{n}", "password": "x"}, REMOTE_ADDR="10.0.0.7")
    assert _merchant_login(client, "pass-1234", ip="10.0.0.7").status_code == 429
    assert _merchant_login(Client(), "pass-1234", ip="10.0.0.8").status_code == 302


def test_ten_wrong_passwords_lock_the_admin_login_and_the_admin_unlocks(transactional_db):
    bob = reviewer("bob")
    client = Client()
    for _ in range(LIMIT):
        _admin_login(client, "bob", "wrong")
    locked = _admin_login(client, "bob", "pass-1234")
    assert locked.status_code == 429 and "登录已临时锁定" in locked.content.decode()
    assert "_auth_user_id" not in client.session

    # The unlock path: a superuser deletes the access attempt in the admin (Axes › Access attempts).
    from axes.models import AccessAttempt

    root = staff_client(staff_user("root", None))
    attempts = list(AccessAttempt.objects.filter(username="bob").values_list("pk", flat=True))
    assert attempts
    response = root.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
        REMOTE_ADDR="10.0.0.99",
    )
    assert response.status_code == 302 and not AccessAttempt.objects.filter(username="bob").exists()
    assert _admin_login(Client(), "bob", "pass-1234").status_code == 302
    assert bob.is_staff


def test_failed_api_authentication_is_throttled_then_locked(merchant_alice):
    good = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}", REMOTE_ADDR="10.0.0.3")
    assert good.get("/api/v1/wallet").status_code == 200
    bad = Client(HTTP_AUTHORIZATION="Bearer sk_deadbeef_guess", REMOTE_ADDR="10.0.0.3")
    for _ in range(LIMIT - 1):
        assert bad.get("/api/v1/wallet").status_code == 401
    locked = bad.get("/api/v1/wallet")
    assert locked.status_code == 429
    body = locked.json()
    assert set(body) == {"error"} and body["error"]["code"] == "login_locked" and body["error"]["message"]
    assert int(locked["Retry-After"]) == 30 * 60
    # The right key from the same address is refused too while the lockout lasts.
    answer = good.get("/api/v1/wallet")
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "login_locked"
    # From elsewhere the good key works; guessing one key's secret from many addresses locks that key.
    assert (
        Client(HTTP_AUTHORIZATION=good.defaults["HTTP_AUTHORIZATION"], REMOTE_ADDR="10.0.0.4")
        .get("/api/v1/wallet")
        .status_code
        == 200
    )


def test_api_guesses_at_one_key_lock_that_key_from_any_address(merchant_alice):
    key = api_key_create(merchant=merchant_alice)
    prefix = key.split("_")[1]
    for n in range(LIMIT):
        Client(HTTP_AUTHORIZATION=f"Bearer sk_{prefix}_guess{n}", REMOTE_ADDR=f"10.1.0.{n}").get("/api/v1/wallet")
    locked = Client(HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR="10.2.0.1").get("/api/v1/wallet")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "login_locked"


def test_failed_attempts_keep_no_password(merchant_alice):
    from axes.models import AccessAttempt

    _merchant_login(Client(), "secret-guess-123")
    attempt = AccessAttempt.objects.get()
    assert "secret-guess-123" not in attempt.post_data


# --- staff second factor --------------------------------------------------------------------------------
def test_staff_without_a_second_factor_cannot_open_the_admin(transactional_db):
    bob = reviewer("bob")
    client = Client()
    client.force_login(bob)  # the password alone
    for path in ("/admin/", "/admin/withdrawals/withdrawal/", "/admin/ops/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
    assert client.get("/admin/login/?next=/admin/")["Location"].startswith("/admin/otp/enrol/")
    assert staff_client(bob).get("/admin/").status_code == 200


def test_new_staff_enrol_a_totp_device_on_first_login_then_need_a_code_each_time(transactional_db):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    reviewer("bob")
    client = Client()
    response = _admin_login(client, "bob", "pass-1234")
    assert response["Location"] == "/admin/"
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    enrol_url = client.get("/admin/login/?next=/admin/")["Location"]
    assert enrol_url.startswith("/admin/otp/enrol/")
    page = client.get(enrol_url).content.decode()
    assert "<svg" in page and "data-otp-secret" in page
    device = TOTPDevice.objects.get(user__username="bob", confirmed=False)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        wrong = client.post(enrol_url, {"otp_token": "000000" if totp(device.bin_key) else "111111"})
        assert wrong.status_code == 400 and client.get("/admin/")["Location"].startswith("/admin/login/")
        clock.shift(timedelta(seconds=5))
        done = client.post(enrol_url, {"otp_token": f"{totp(device.bin_key):06d}", "next": "/admin/"})
        assert done["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200

        # Next login: password, then the code of the enrolled device (no new enrolment).
        client.post("/admin/logout/")
        clock.shift(timedelta(seconds=60))
        fresh = Client()
        _admin_login(fresh, "bob", "pass-1234")
        verify_url = fresh.get("/admin/login/?next=/admin/")["Location"]
        assert verify_url.startswith("/admin/otp/?")
        page = fresh.get(verify_url).content.decode()
        assert "data-demo-otp" not in page  # the demo hint exists only in demo mode
        assert fresh.post(verify_url, {"otp_token": "12345x"}).status_code == 400
        clock.shift(timedelta(seconds=5))
        ok = fresh.post(verify_url, {"otp_token": f"{totp(device.bin_key):06d}", "next": "/admin/"})
        assert ok["Location"] == "/admin/" and fresh.get("/admin/").status_code == 200


def test_wrong_codes_count_towards_the_lockout(transactional_db):
    bob = reviewer("bob")
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=bob, name="phone", confirmed=True)
    client = Client()
    _admin_login(client, "bob", "pass-1234")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(LIMIT):
            clock.shift(timedelta(minutes=10))  # past django-otp's own back-off (2^n seconds)
            last = client.post("/admin/otp/", {"otp_token": "000000"}, REMOTE_ADDR="10.0.0.2")
        assert last.status_code == 429 and "登录已临时锁定" in last.content.decode()
        assert "_auth_user_id" not in client.session  # the half-open session ends


def test_demo_mode_shows_the_demo_device_code_on_the_code_page(transactional_db, settings):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.DEMO_MODE = True
    bob = reviewer("bob")
    device = TOTPDevice.objects.create(user=bob, name="demo", confirmed=True)
    client = Client()
    _admin_login(client, "bob", "pass-1234")
    with time_machine.travel(timezone.now(), tick=False):
        page = client.get("/admin/otp/?next=/admin/").content.decode()
        assert f"{totp(device.bin_key):06d}" in page


# --- idle sessions ----------------------------------------------------------------------------------------
def test_idle_staff_session_ends_after_15_minutes(transactional_db):
    client = staff_client(reviewer("bob"))
    start = time.time()
    with time_machine.travel(start, tick=False) as clock:
        assert client.get("/admin/").status_code == 200
        clock.shift(timedelta(minutes=14))
        assert client.get("/admin/").status_code == 200
        clock.shift(timedelta(minutes=16))
        gone = client.get("/admin/withdrawals/withdrawal/")
        assert gone.status_code == 302 and gone["Location"].startswith("/admin/login/")
        assert "_auth_user_id" not in client.session


def test_idle_merchant_session_ends_after_30_minutes_and_polling_is_not_activity(merchant_alice):
    from withdrawals.services import withdrawal_submit

    account = merchant_alice.payout_accounts.get(is_default=True)
    w = withdrawal_submit(
        merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=10_000, idempotency_key="idle"
    ).withdrawal
    client = Client()
    assert client.login(username="alice", password="pass-1234")
    with time_machine.travel(time.time(), tick=False) as clock:
        assert client.get("/").status_code == 200
        clock.shift(timedelta(minutes=25))
        assert client.get("/").status_code == 200  # activity: the clock starts again
        clock.shift(timedelta(minutes=20))
        assert client.get(f"/withdrawals/{w.pk}/progress/").status_code == 200  # the page polling by itself
        clock.shift(timedelta(minutes=11))  # 31 minutes since the person last did something
        assert client.get(f"/withdrawals/{w.pk}/progress/").status_code == 401
        gone = client.get("/withdrawals/")
        assert gone.status_code == 302 and gone["Location"].startswith("/login/")
    client = Client()
    assert client.login(username="alice", password="pass-1234")
    with time_machine.travel(time.time(), tick=False) as clock:
        assert client.get("/").status_code == 200
        clock.shift(timedelta(minutes=31))
        gone = client.get("/withdrawals/")
        assert gone.status_code == 302 and gone["Location"].startswith("/login/")
        page = client.get(gone["Location"]).content.decode()
        assert "未操作" in page and "自动退出" in page
