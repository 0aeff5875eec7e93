"""Security issue, finding 1: step-up that holds outside demo mode.

The code is shown only on the merchant's phone (never on the page, in our database or in a log line), the
sandbox face buttons work only in demo mode, binding or replacing an authenticator needs the password and the
current factor, codes are resent at most once a minute and a few times a day, and wrong answers count across
resends until the withdrawal goes to manual review."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp

from config.errors import DomainError
from config.totp import totp_enrol_confirm, totp_enrol_start
from risk.models import FaceCheckSession, SmsMessage, StepUpChallenge
from risk.sandbox_sms import SandboxSms, serve
from risk.sms import (
    SMS_TEMPLATE_TEXT,
    AliyunSmsProvider,
    SmsProviderError,
    aliyun_signature,
    memory_sms_provider,
    sms_demo_inbox_latest,
)
from risk.stepup import stepup_issue, stepup_verify
from tests.security_support import last_sms_code
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_resend_code, withdrawal_submit, withdrawal_verify

pytestmark = pytest.mark.django_db(transaction=True)


def _step_up(monkeypatch):
    from risk.contract import RiskDecision

    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("step_up", 45, ["new_device"], {})
    )


def _submit(merchant, key="s1"):
    account = merchant.payout_accounts.get(is_default=True)
    return withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=account.pk, amount=30_000, idempotency_key=key
    ).withdrawal


@pytest.fixture
def alice_client(merchant_alice):
    client = Client()
    assert client.login(username="alice", password="pass-1234")
    return client


# --- the code stays on the phone ------------------------------------------------------------------------
def test_outside_demo_mode_the_page_never_shows_the_code(alice_client, merchant_alice, monkeypatch, caplog, settings):
    assert settings.DEMO_MODE is False and settings.DEBUG is False
    _step_up(monkeypatch)
    caplog.set_level(logging.DEBUG)
    w = _submit(merchant_alice)
    code = last_sms_code(merchant_alice.kyc.phone)
    page = alice_client.get(f"/withdrawals/{w.pk}/").content.decode()
    assert "短信验证" in page
    assert code not in page and "data-dev-sms" not in page
    # Our database keeps a keyed hash of the code and a masked text; no log line has the code or the number.
    challenge = StepUpChallenge.objects.get(subject=f"withdrawal:{w.pk}")
    expected = hmac.new(settings.SECRET_KEY.encode(), f"withdrawal:{w.pk}:{code}".encode(), hashlib.sha256)
    assert challenge.code_hash == expected.hexdigest() and code not in challenge.destination
    assert merchant_alice.kyc.phone not in challenge.destination
    sms = SmsMessage.objects.get()
    assert code not in sms.text and "******" in sms.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SMS code sent to 138****8000" in logged
    assert code not in logged and merchant_alice.kyc.phone not in logged
    assert sms_demo_inbox_latest(phone=merchant_alice.kyc.phone, out_id_prefix="") is None


def test_in_demo_mode_the_page_shows_the_phone(alice_client, merchant_alice, monkeypatch, settings):
    settings.DEMO_MODE = True
    _step_up(monkeypatch)
    w = _submit(merchant_alice)
    page = alice_client.get(f"/withdrawals/{w.pk}/").content.decode()
    assert "data-dev-sms" in page and last_sms_code(merchant_alice.kyc.phone) in page


def test_sandbox_face_pass_is_refused_outside_demo_mode(alice_client, merchant_alice, monkeypatch, settings):
    _step_up(monkeypatch)
    w = _submit(merchant_alice)
    alice_client.post(f"/withdrawals/{w.pk}/face/")
    page = alice_client.get(f"/withdrawals/{w.pk}/").content.decode()
    assert "人脸核验" in page and "data-face-sandbox" not in page
    alice_client.post(f"/withdrawals/{w.pk}/face/complete/", {"sandbox": "pass"})
    assert Withdrawal.objects.get(pk=w.pk).status == Status.AWAITING_VERIFICATION
    assert FaceCheckSession.objects.get().status == "pending"  # the browser cannot play the capture


def test_without_a_face_provider_the_face_option_is_not_offered(alice_client, merchant_alice, monkeypatch, settings):
    settings.FACE_PROVIDER = ""  # production: no real provider configured
    _step_up(monkeypatch)
    w = _submit(merchant_alice)
    assert "改用人脸核验" not in alice_client.get(f"/withdrawals/{w.pk}/").content.decode()
    page = alice_client.get(alice_client.post(f"/withdrawals/{w.pk}/face/")["Location"]).content.decode()
    assert "人脸核验暂不可用" in page
    assert not StepUpChallenge.objects.filter(method="face").exists()


# --- binding an authenticator needs the password and the current factor ------------------------------
def test_a_stolen_session_cannot_bind_an_authenticator(alice_client, merchant_alice):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page = alice_client.get("/security/totp/").content.decode()
    assert "<svg" not in page  # no key is shown to a session alone
    refused = alice_client.post("/security/totp/", {"action": "confirm", "code": "123456"})
    assert refused.status_code == 400 and "请先验证登录密码" in refused.content.decode()
    alice_client.post("/security/totp/", {"action": "send_code"})
    sms_code = last_sms_code(merchant_alice.kyc.phone)
    wrong_password = alice_client.post(
        "/security/totp/", {"action": "reauth", "password": "guess", "current_code": sms_code}
    )
    assert wrong_password.status_code == 400 and "<svg" not in wrong_password.content.decode()
    assert "密码或当前验证码不正确" in wrong_password.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()


def test_binding_with_password_and_sms_code_then_replacing_needs_the_current_authenticator(
    alice_client, merchant_alice
):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    alice_client.post("/security/totp/", {"action": "send_code"})
    code = last_sms_code(merchant_alice.kyc.phone)
    page = alice_client.post("/security/totp/", {"action": "reauth", "password": "pass-1234", "current_code": code})
    assert page.status_code == 200 and "<svg" in page.content.decode()
    first = TOTPDevice.objects.get(confirmed=False)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        done = alice_client.post("/security/totp/", {"action": "confirm", "code": f"{totp(first.bin_key):06d}"})
        assert done.status_code == 302 and TOTPDevice.objects.get(confirmed=True).pk == first.pk

        # Replacing: the password alone, or with an SMS code, is not enough — the current authenticator is.
        clock.shift(timedelta(seconds=31))
        alice_client.post("/security/totp/", {"action": "send_code"})
        refused = alice_client.post(
            "/security/totp/", {"action": "reauth", "password": "pass-1234", "current_code": "000000"}
        )
        assert refused.status_code == 400 and "<svg" not in refused.content.decode()
        clock.shift(timedelta(seconds=31))
        ok = alice_client.post(
            "/security/totp/",
            {"action": "reauth", "password": "pass-1234", "current_code": f"{totp(first.bin_key):06d}"},
        )
        assert "<svg" in ok.content.decode()
        second = TOTPDevice.objects.get(confirmed=False)
        alice_client.post("/security/totp/", {"action": "confirm", "code": f"{totp(second.bin_key):06d}"})
    assert list(TOTPDevice.objects.filter(confirmed=True).values_list("pk", flat=True)) == [second.pk]


def test_a_key_seen_earlier_is_never_the_one_confirmed(merchant_alice):
    user = merchant_alice.users.get()
    seen_by_attacker = totp_enrol_start(user=user)
    shown_to_owner = totp_enrol_start(user=user)
    with pytest.raises(DomainError) as exc:
        totp_enrol_confirm(user=user, code=f"{totp(seen_by_attacker.bin_key):06d}", device_id=seen_by_attacker.pk)
    assert exc.value.code == "verification_failed"
    totp_enrol_confirm(user=user, code=f"{totp(shown_to_owner.bin_key):06d}", device_id=shown_to_owner.pk)


# --- resend limits and failures across resends ----------------------------------------------------------
def test_a_second_resend_within_60_seconds_is_refused(merchant_alice, monkeypatch):
    _step_up(monkeypatch)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        w = _submit(merchant_alice)
        clock.shift(timedelta(seconds=61))
        withdrawal_resend_code(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
        clock.shift(timedelta(seconds=10))
        with pytest.raises(DomainError) as exc:
            withdrawal_resend_code(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
        assert (exc.value.code, exc.value.details) == ("stepup_resend_too_soon", {"retry_after": 51})
        assert exc.value.status == 429
        assert StepUpChallenge.objects.filter(subject=f"withdrawal:{w.pk}").count() == 2


def test_daily_caps_per_withdrawal_and_per_phone(merchant_alice, monkeypatch, settings):
    settings.STEPUP_SMS_DAILY_PER_SUBJECT = 3
    settings.STEPUP_SMS_DAILY_PER_PHONE = 4
    _step_up(monkeypatch)
    with time_machine.travel(timezone.localtime().replace(hour=9, minute=0), tick=False) as clock:
        w1 = _submit(merchant_alice, "cap-1")  # code 1 of w1
        for _ in range(2):
            clock.shift(timedelta(seconds=61))
            withdrawal_resend_code(withdrawal_id=w1.pk, merchant_id=merchant_alice.pk)
        clock.shift(timedelta(seconds=61))
        with pytest.raises(DomainError) as exc:
            withdrawal_resend_code(withdrawal_id=w1.pk, merchant_id=merchant_alice.pk)
        assert (exc.value.code, exc.value.details) == ("stepup_send_limit", {"limit": "per_subject"})
        w2 = _submit(merchant_alice, "cap-2")  # a new withdrawal's first code is always sent: 4 to this phone
        clock.shift(timedelta(seconds=61))
        with pytest.raises(DomainError) as exc:
            withdrawal_resend_code(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk)
        assert (exc.value.code, exc.value.details) == ("stepup_send_limit", {"limit": "per_phone"})
        clock.shift(timedelta(days=1))
        withdrawal_resend_code(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk)  # a new day


def test_six_wrong_codes_send_the_withdrawal_to_review_across_resends(merchant_alice, monkeypatch):
    _step_up(monkeypatch)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        w = _submit(merchant_alice)
        answers = []
        for attempt in range(6):
            if attempt == 3:  # a resend gives a new code, not new guesses
                clock.shift(timedelta(seconds=61))
                withdrawal_resend_code(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
            right = last_sms_code(merchant_alice.kyc.phone)
            try:
                withdrawal_verify(
                    withdrawal_id=w.pk, merchant_id=merchant_alice.pk, code="000000" if right != "000000" else "111111"
                )
            except DomainError as exc:
                answers.append((exc.code, exc.details.get("attempts_left")))
    assert answers == [
        ("verification_failed", 4),
        ("verification_failed", 3),
        ("verification_failed", 2),
        ("verification_failed", 1),
        ("verification_exhausted", None),
        ("invalid_state", None),  # the sixth guess never reaches a code
    ]
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PENDING_REVIEW
    assert w.events.filter(to_status=Status.PENDING_REVIEW, reason__contains="验证失败次数过多").exists()
    with pytest.raises(DomainError) as again:  # nor can the right code be asked for again
        withdrawal_resend_code(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
    assert again.value.code == "invalid_state"


def test_an_exhausted_subject_gets_no_more_codes(merchant_alice):
    subject = "totp_enrol:1:20260101"
    with time_machine.travel(timezone.now(), tick=False) as clock:
        stepup_issue(subject=subject, merchant_id=merchant_alice.pk, phone="13800138000")
        codes = []
        for _ in range(5):
            with pytest.raises(DomainError) as failed:
                stepup_verify(subject=subject, code="abcdef")
            codes.append(failed.value.code)
        assert codes == ["verification_failed"] * 4 + ["verification_exhausted"]
        clock.shift(timedelta(minutes=2))
        with pytest.raises(DomainError) as exc:
            stepup_issue(subject=subject, merchant_id=merchant_alice.pk, phone="13800138000")
        assert exc.value.code == "verification_exhausted"


# --- the SMS provider: Alibaba Cloud SendSms, signature version 1.0 -----------------------------------------
def test_signature_matches_the_documented_examples():
    send_sms = {  # Alibaba Cloud SMS documentation's SendSms example (GET)
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature(send_sms, "testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    describe_regions = {  # the RPC signature mechanism page's example
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Version": "2014-05-26",
        "Timestamp": "2016-02-23T12:46:24Z",
    }
    assert aliyun_signature(describe_regions, "testsecret", method="GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@pytest.fixture
def sandbox_sms():
    book = SandboxSms(access_key_id="ak-test", access_key_secret="sk-test", templates={"SMS_T1": SMS_TEMPLATE_TEXT})
    server = serve(host="127.0.0.1", port=0, book=book)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield book, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _provider(url: str, **overrides: str) -> AliyunSmsProvider:
    config = {
        "endpoint": url,
        "access_key_id": "ak-test",
        "access_key_secret": "sk-test",
        "sign_name": "卡盟提现",
        "template_code": "SMS_T1",
    }
    return AliyunSmsProvider(**{**config, **overrides})  # type: ignore[arg-type]


def test_aliyun_provider_delivers_through_the_sandbox_receiver(sandbox_sms, merchant_alice, settings):
    book, url = sandbox_sms
    receipt = _provider(url).send(phone="13800138000", params={"code": "246810"}, out_id="m1-c1")
    assert receipt.provider == "aliyun" and receipt.message_id.endswith("^0")
    [message] = book.messages(phone="13800138000")
    assert "验证码为 246810" in message["text"] and message["out_id"] == "m1-c1"

    with pytest.raises(SmsProviderError) as exc:  # a forged request: wrong secret
        _provider(url, access_key_secret="guess").send(phone="13800138000", params={"code": "1"})
    assert (exc.value.code, exc.value.permanent) == ("SignatureDoesNotMatch", True)
    with pytest.raises(SmsProviderError) as exc:
        _provider(url).send(phone="123", params={"code": "1"})
    assert exc.value.code == "isv.MOBILE_NUMBER_ILLEGAL"
    replay = _provider(url).request_params(phone="13800138000", params={"code": "1"})
    assert book.send_sms("POST", replay)[1]["Code"] == "OK"
    assert book.send_sms("POST", replay)[1]["Code"] == "SignatureNonceUsed"

    # Wired through the settings: the step-up code reaches the phone, and only in demo mode does the page's
    # inbox helper read it back.
    settings.SMS_PROVIDER, settings.ALIYUN_SMS_ENDPOINT = "aliyun", url
    settings.ALIYUN_SMS_ACCESS_KEY_ID, settings.ALIYUN_SMS_ACCESS_KEY_SECRET = "ak-test", "sk-test"
    settings.ALIYUN_SMS_TEMPLATE_CODE = "SMS_T1"
    memory_sms_provider().clear()
    stepup_issue(subject="withdrawal:77", merchant_id=merchant_alice.pk, phone="13800138000")
    assert memory_sms_provider().last() is None
    latest = book.messages(phone="13800138000", out_id_prefix=f"m{merchant_alice.pk}-")[0]
    code = latest["text"].split("验证码为 ")[1][:6]
    assert stepup_verify(subject="withdrawal:77", code=code).used_at is not None
    assert sms_demo_inbox_latest(phone="13800138000", out_id_prefix="") is None
    settings.DEMO_MODE = True
    shown = sms_demo_inbox_latest(phone="13800138000", out_id_prefix=f"m{merchant_alice.pk}-")
    assert shown is not None and code in shown.text


def test_base32_of_the_demo_seed_is_what_the_admin_prints():
    from operations.demo import demo_totp_key, demo_totp_seed_base32

    assert base64.b32decode(demo_totp_seed_base32("reviewer")) == bytes.fromhex(demo_totp_key("reviewer"))
