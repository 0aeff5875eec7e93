"""Risk controls through the Django services: KYC provider and levels, tiers and limits, high-risk lists, rule
set versions and shadow, step-up (SMS, TOTP, face), review labels, the learning loop, linked accounts.
Time-dependent rules run under a frozen clock (time-machine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django_otp.oath import totp

from accounts.kyc import KycProviderError, KycResult, SandboxKycProvider, kyc_provider_set
from accounts.models import KycRecord, MerchantTier
from accounts.services import (
    kyc_verify,
    merchant_register,
    merchant_tiers_refresh_all,
    payout_account_add,
    phone_change,
)
from channels.sandbox_rules import make_card_number
from config.errors import DomainError
from config.totp import totp_enrol_confirm, totp_enrol_start
from risk.engine import DEFAULT_RULESET
from risk.learning import risk_learning_loop_run
from risk.models import RiskDecisionLog, RiskLabel, RiskListEntry, RuleSetVersion, SmsMessage, StepUpChallenge
from risk.selectors import risk_linked_accounts
from risk.services import risk_engine_reset, risk_feedback, risk_list_add
from risk.stepup import stepup_issue, stepup_verify
from tests.factories import MerchantFactory, card_for
from tests.security_support import last_sms_code
from wallets.services import merchant_sale_settle
from withdrawals.models import Status, Withdrawal
from withdrawals.services import (
    withdrawal_approve,
    withdrawal_face_complete,
    withdrawal_face_start,
    withdrawal_limits,
    withdrawal_reject,
    withdrawal_submit,
    withdrawal_verify,
)

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time


@pytest.fixture(autouse=True)
def _fresh_engine():
    risk_engine_reset()  # the engine caches its rule set / model; the database is flushed between tests
    yield
    risk_engine_reset()


def submit(merchant, amount=10_000, account=None, **kw):
    account = account or merchant.payout_accounts.get(is_default=True)
    return withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount, **kw).withdrawal


def fresh(w: Withdrawal) -> Withdrawal:
    return Withdrawal.objects.get(pk=w.pk)


# --- KYC --------------------------------------------------------------------------------------------------
def test_kyc_goes_through_the_provider_real_name_then_four_elements_on_a_card(sandbox_channel):
    reg = merchant_register(name="店", real_name="王五", id_number="110101199003074477", phone="13900001111")
    kyc = kyc_verify(merchant=reg.merchant)  # no card yet: real name only
    assert (kyc.status, kyc.level, kyc.provider) == ("verified", 1, "sandbox")
    card = make_card_number("", seed=4242)
    payout_account_add(merchant=reg.merchant, account_number=card, holder_name="王 五")
    kyc.refresh_from_db()
    assert (kyc.level, kyc.four_elements_card) == (2, card)


def test_kyc_mismatch_is_rejected_and_a_provider_timeout_can_be_retried(sandbox_channel):
    bad = merchant_register(name="店", real_name="不符张三", id_number="110101199003074477", phone="13900001111")
    with pytest.raises(DomainError) as exc:
        kyc_verify(merchant=bad.merchant)
    assert exc.value.code == "kyc_mismatch" and exc.value.details["name_match"] is False
    assert KycRecord.objects.get(merchant=bad.merchant).status == KycRecord.Status.REJECTED

    class Down(SandboxKycProvider):
        def verify_real_name(self, name: str, id_number: str) -> KycResult:
            raise KycProviderError("503 system busy", permanent=False)

    previous = kyc_provider_set(Down())
    try:
        slow = merchant_register(name="店2", real_name="赵六", id_number="310101198001010018", phone="13900002222")
        with pytest.raises(DomainError) as exc:
            kyc_verify(merchant=slow.merchant)
        assert (exc.value.code, exc.value.details["retry"]) == ("kyc_provider_unavailable", True)
        assert KycRecord.objects.get(merchant=slow.merchant).status == KycRecord.Status.PENDING
    finally:
        kyc_provider_set(previous)


def test_four_elements_mismatch_keeps_level_one_and_the_basic_tier(sandbox_channel):
    # The sandbox says a phone ending in 0000 belongs to someone else.
    m = MerchantFactory(phone="13900000000", credit=5_000_000)
    assert KycRecord.objects.get(merchant=m).level == 1
    limits = withdrawal_limits(merchant=m)
    assert limits.tier is not None and limits.tier.code == "basic"
    with pytest.raises(DomainError) as exc:
        submit(m, amount=limits.per_payout + 1)
    assert exc.value.code == "limit_exceeded"
    assert exc.value.details["limit"] == "tier_per_payout" and exc.value.details["tier"] == "basic"


def test_unverified_merchant_cannot_withdraw(sandbox_channel):
    m = MerchantFactory(verified=False)
    with pytest.raises(DomainError) as exc:
        submit(m)
    assert exc.value.code == "kyc_required"


# --- tiers ------------------------------------------------------------------------------------------------
def test_tier_daily_and_monthly_limits_name_the_tier(merchant_alice):
    MerchantTier.objects.filter(code="standard").update(daily_limit=30_000, monthly_limit=50_000)
    submit(merchant_alice, amount=20_000)
    with pytest.raises(DomainError) as exc:
        submit(merchant_alice, amount=15_000, idempotency_key="b")
    assert exc.value.code == "limit_exceeded"
    assert exc.value.details == {
        "limit": "tier_daily",
        "maximum": 30_000,
        "used": 20_000,
        "tier": "standard",
        "tier_name": "标准",
    }
    limits = withdrawal_limits(merchant=merchant_alice)
    assert (limits.daily_remaining, limits.monthly_remaining) == (10_000, 30_000)


def test_tier_upgrades_on_settled_volume_and_age(sandbox_channel):
    with time_machine.travel(T0, tick=False):
        m = MerchantFactory(credit=0)
        assert withdrawal_limits(merchant=m).tier.code == "standard"
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        # Crossing the silver volume on a sale upgrades at once (age and clean history already qualify).
        merchant_sale_settle(merchant_id=m.pk, order_ref="big-1", amount=50_000_000)
        m.refresh_from_db()
        assert m.tier.code == "silver" and m.settled_volume == 50_000_000
    with time_machine.travel(T0 + timedelta(days=181), tick=False):
        m.__class__.objects.filter(pk=m.pk).update(settled_volume=600_000_000)
        assert merchant_tiers_refresh_all()["changed"] == 1  # the periodic job: age alone crossed gold's bar
        m.refresh_from_db()
        assert m.tier.code == "gold"
        # Confirmed fraud makes the history unclean: the next refresh takes the merchant down.
        RiskLabel.objects.create(withdrawal_ref="x", merchant_ref=m.risk_subject, fraud=True, source="fraud_confirmed")
        merchant_tiers_refresh_all()
        m.refresh_from_db()
        assert m.tier.code == "standard"


def test_dashboard_shows_tier_and_remaining_limits(client, merchant_alice):
    submit(merchant_alice, amount=50_000)
    client.login(username="alice", password="pass-1234")
    page = client.get("/").content.decode()
    assert "data-tier-name>标准" in page
    assert "¥199,500.00" in page  # 200,000 yuan a day minus 500 yuan


# --- high-risk lists --------------------------------------------------------------------------------------
def test_listed_device_blocks_listed_ip_adds_score_and_expired_entries_stop_hitting(merchant_alice):
    baseline = fresh(submit(merchant_alice, ip="36.1.1.1", device="dev_alice_home", idempotency_key="a"))
    with time_machine.travel(datetime.now(tz=UTC), tick=False) as clock:
        risk_list_add(
            kind="ip", value="36.1.1.1", reason="manual", expires_at=datetime.now(tz=UTC) + timedelta(hours=1)
        )
        with_ip = fresh(submit(merchant_alice, ip="36.1.1.1", device="dev_alice_home", idempotency_key="b"))
        assert "listed_ip" in with_ip.risk_reasons
        assert with_ip.risk_explanation["list_hits"][0]["kind"] == "ip"
        clock.shift(timedelta(hours=1, seconds=1))
        expired = fresh(submit(merchant_alice, ip="36.1.1.1", device="dev_alice_home", idempotency_key="c"))
        assert "listed_ip" not in expired.risk_reasons and "list_hits" not in expired.risk_explanation
    risk_list_add(kind="device", value="dev_alice_home", reason="used by a fraud ring")
    blocked = fresh(submit(merchant_alice, ip="36.1.1.1", device="dev_alice_home", idempotency_key="d"))
    assert (blocked.status, blocked.risk_reasons[0]) == (Status.REJECTED, "listed_device_card_or_id")
    assert baseline.status == Status.PAID


def test_learning_loop_entries_only_add_score(merchant_alice):
    risk_list_add(kind="device", value="dev_shared", reason="shared", source=RiskListEntry.Source.LEARNING_LOOP)
    w = fresh(submit(merchant_alice, device="dev_shared"))
    assert "learning_loop_shared_entity" in w.risk_reasons and "listed_device_card_or_id" not in w.risk_reasons
    assert w.risk_outcome != "block"


def test_listed_identity_number_blocks(merchant_alice):
    risk_list_add(kind="id_number", value=merchant_alice.kyc.id_number, reason="stolen identity")
    w = fresh(submit(merchant_alice))
    assert w.risk_outcome == "block" and "listed_device_card_or_id" in w.risk_reasons


# --- rule sets --------------------------------------------------------------------------------------------
def test_rule_sets_import_activate_and_shadow(merchant_alice, tmp_path):
    strict = DEFAULT_RULESET.to_dict()
    strict["version"] = "strict-1"
    strict["rules"].append(
        {
            "code": "everything",
            "description": "x",
            "when": {"feature": "amount_yuan", "op": ">", "value": 0},
            "score": 200,
            "outcome": "block",
        }
    )
    path = tmp_path / "strict.json"
    import json

    path.write_text(json.dumps(strict), encoding="utf-8")
    call_command("risk_rules", "import", str(path))
    call_command("risk_rules", "shadow", "strict-1")
    shadowed = fresh(submit(merchant_alice, idempotency_key="s"))
    assert shadowed.status == Status.PAID  # the shadow never changes the outcome
    assert shadowed.risk_explanation["shadow"]["version"] == "strict-1"
    assert shadowed.risk_explanation["shadow"]["outcome"] == "block"
    assert shadowed.risk_explanation["ruleset_version"] == DEFAULT_RULESET.version
    assert RiskDecisionLog.objects.get(withdrawal_id=shadowed.pk).shadow_outcome == "block"
    call_command("risk_rules", "activate", "strict-1")
    live = fresh(submit(merchant_alice, idempotency_key="t"))
    assert (live.status, live.risk_explanation["ruleset_version"]) == (Status.REJECTED, "strict-1")
    assert RuleSetVersion.objects.get(version="strict-1").history.count() >= 3


# --- step-up ----------------------------------------------------------------------------------------------
def _step_up(monkeypatch):
    from risk.contract import RiskDecision

    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("step_up", 45, ["x"], {})
    )


def _sms_code() -> str:
    return last_sms_code()  # from the phone: our database keeps only a masked text


def test_sms_code_is_bound_to_its_withdrawal_and_cannot_be_replayed(merchant_alice, monkeypatch):
    _step_up(monkeypatch)
    w1 = submit(merchant_alice, idempotency_key="1")
    code1 = _sms_code()
    w2 = submit(merchant_alice, idempotency_key="2")
    with pytest.raises(DomainError) as exc:  # w1's code does not open w2
        withdrawal_verify(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk, code=code1)
    assert exc.value.code == "verification_failed"
    assert withdrawal_verify(withdrawal_id=w1.pk, merchant_id=merchant_alice.pk, code=code1).status == Status.APPROVED
    with pytest.raises(DomainError) as exc:  # replay of a used code
        stepup_verify(subject=f"withdrawal:{w1.pk}", code=code1)
    assert exc.value.code == "verification_failed"


def test_sms_code_expires_and_attempts_are_limited(merchant_alice):
    with time_machine.travel(T0, tick=False) as clock:
        stepup_issue(subject="withdrawal:999", merchant_id=merchant_alice.pk, phone="13800138000")
        code = _sms_code()
        for attempts_left in (4, 3, 2, 1):
            with pytest.raises(DomainError) as exc:
                stepup_verify(subject="withdrawal:999", code="000000" if code != "000000" else "111111")
            assert (exc.value.code, exc.value.details) == ("verification_failed", {"attempts_left": attempts_left})
        clock.shift(timedelta(minutes=5))
        with pytest.raises(DomainError) as exc:
            stepup_verify(subject="withdrawal:999", code=code)
        assert exc.value.code == "verification_failed"  # expired at exactly five minutes


def test_totp_step_up_when_enrolled_and_a_token_is_accepted_once(merchant_alice, monkeypatch):
    user = merchant_alice.users.get()
    device = totp_enrol_start(user=user)
    with time_machine.travel(T0, tick=False) as clock:
        totp_enrol_confirm(user=user, code=f"{totp(device.bin_key):06d}")
        clock.shift(timedelta(seconds=60))
        _step_up(monkeypatch)
        w1 = submit(merchant_alice, idempotency_key="1")
        w2 = submit(merchant_alice, idempotency_key="2")
        assert StepUpChallenge.objects.filter(method="totp").count() == 2
        assert not SmsMessage.objects.exists()
        token = f"{totp(device.bin_key):06d}"
        withdrawal_verify(withdrawal_id=w1.pk, merchant_id=merchant_alice.pk, code=token)
        assert fresh(w1).status in (Status.APPROVED, Status.PAID)
        with pytest.raises(DomainError) as exc:  # the same token for another withdrawal: replay refused
            withdrawal_verify(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk, code=token)
        assert exc.value.code == "verification_failed"
        clock.shift(timedelta(seconds=30))
        withdrawal_verify(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk, code=f"{totp(device.bin_key):06d}")


def test_face_check_pass_and_fail(client, merchant_alice, monkeypatch, settings):
    settings.DEMO_MODE = True  # the page plays the capture at the sandbox provider only in demo mode
    _step_up(monkeypatch)
    client.login(username="alice", password="pass-1234")
    w = submit(merchant_alice, idempotency_key="f1")
    client.post(f"/withdrawals/{w.pk}/face/")
    assert "人脸核验" in client.get(f"/withdrawals/{w.pk}/").content.decode()
    with pytest.raises(DomainError) as exc:
        withdrawal_face_complete(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
    assert (exc.value.code, exc.value.details) == ("verification_failed", {"face": "pending"})
    client.post(f"/withdrawals/{w.pk}/face/complete/", {"sandbox": "pass"})
    assert fresh(w).status in (Status.APPROVED, Status.PAID)
    w2 = submit(merchant_alice, idempotency_key="f2")
    withdrawal_face_start(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk)
    client.post(f"/withdrawals/{w2.pk}/face/complete/", {"sandbox": "fail"})
    with pytest.raises(DomainError) as exc:  # a failed session is final
        withdrawal_face_complete(withdrawal_id=w2.pk, merchant_id=merchant_alice.pk)
    assert exc.value.code == "verification_locked"
    assert fresh(w2).status == Status.AWAITING_VERIFICATION


def test_totp_enrolment_page_shows_a_qr_code(client, merchant_alice):
    client.login(username="alice", password="pass-1234")
    page = client.get("/security/totp/").content.decode()
    assert "<svg" not in page and "验证身份" in page  # no key before the password and the current factor
    client.post("/security/totp/", {"action": "send_code"})
    code = last_sms_code(merchant_alice.kyc.phone)
    page = client.post(
        "/security/totp/", {"action": "reauth", "password": "pass-1234", "current_code": code}
    ).content.decode()
    assert "<svg" in page and "确认绑定" in page


# --- review labels, feedback, learning loop ---------------------------------------------------------------
def _decided_as(monkeypatch, outcome: str) -> None:
    """Risk runs for real (state, decision log) but the outcome is forced."""
    from risk.contract import RiskDecision
    from risk.services import risk_assess_withdrawal as real

    def forced(event):
        decision = real(event=event)
        return RiskDecision(outcome, decision.score, decision.reasons, decision.explanation)

    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", forced)


def test_reviewer_decisions_become_labels_with_features(merchant_alice, reviewer_bob, monkeypatch):
    _decided_as(monkeypatch, "review")
    ok = submit(merchant_alice, idempotency_key="r1")
    bad = submit(merchant_alice, idempotency_key="r2")
    withdrawal_approve(withdrawal_id=ok.pk, reviewer=reviewer_bob)
    withdrawal_reject(withdrawal_id=bad.pk, reviewer=reviewer_bob, reason="盗卡")
    approved = RiskLabel.objects.get(withdrawal_ref=str(ok.pk))
    rejected = RiskLabel.objects.get(withdrawal_ref=str(bad.pk))
    assert (approved.fraud, approved.source) == (False, "review_approved")
    assert (rejected.fraud, rejected.source) == (True, "review_rejected")
    assert "account_age_h" in rejected.features and "list_learning_n" in rejected.features


def test_learning_loop_lists_feedback_labels_clean_and_reports_shared_ips(sandbox_channel, monkeypatch):
    _decided_as(monkeypatch, "allow")  # young test accounts would be stepped up; here they must get paid
    people = [MerchantFactory(credit=100_000) for _ in range(4)]
    ws = [submit(m, ip="58.2.2.2", device=f"dev_{i}_abcdef") for i, m in enumerate(people)]
    assert all(fresh(w).status == Status.PAID for w in ws)
    risk_feedback(withdrawal_ref=str(ws[0].pk), merchant_ref=people[0].risk_subject, ts="2026-09-01T00:00:00Z")
    later = datetime.now(tz=UTC) + timedelta(days=8)
    run = risk_learning_loop_run(now=later, window_days=9, clean_after_days=7, shared_min=4)
    entries = RiskListEntry.objects.filter(source="fraud_feedback")
    assert {e.kind for e in entries} == {"device", "ip", "card"}
    assert all(e.expires_at > later for e in entries)
    assert run.summary["settled_clean_labels"] == 3  # the fraud one is not labelled clean
    shared = run.summary["shared"][0]
    assert (shared["kind"], shared["value"], shared["accounts"], shared["listed"]) == ("ip", "58.2.2.2", 4, True)
    listed = RiskListEntry.objects.get(source="learning_loop", value="58.2.2.2")
    assert listed.expires_at == later + timedelta(days=14)


def test_linked_accounts_share_device_ip_and_phone(sandbox_channel):
    a = MerchantFactory(phone="13911112222")
    b = MerchantFactory(phone="13911112222")
    submit(a, ip="60.1.1.1", device="dev_shop_pc_1")
    submit(b, ip="60.1.1.1", device="dev_shop_pc_1")
    linked = risk_linked_accounts(merchant_subject=a.risk_subject)
    assert linked[0]["merchant"] == b.risk_subject
    assert {v["kind"] for v in linked[0]["via"]} == {"device", "ip", "phone"}


# --- rule boundaries under a frozen clock -----------------------------------------------------------------
@pytest.mark.parametrize(("after", "fires"), [(timedelta(hours=23, minutes=59), True), (timedelta(hours=24), False)])
def test_new_card_after_phone_change_boundary(sandbox_channel, after, fires):
    with time_machine.travel(T0 - timedelta(days=40), tick=False) as clock:
        m = MerchantFactory(credit=0, phone="13911113333")
        for day in range(30):
            merchant_sale_settle(merchant_id=m.pk, order_ref=f"o{day}", amount=20_000, buyer=f"b{day}")
            clock.shift(timedelta(days=1))
        clock.move_to(T0)
        phone_change(merchant=m, phone="13911114444", ip="36.9.9.9", device="dev_home_abcdef")
        card = card_for(m)
        clock.shift(after)
        w = fresh(submit(m, amount=10_000, account=card, ip="36.9.9.9", device="dev_home_abcdef"))
    assert ("new_card_after_phone_change" in w.risk_reasons) is fires
    if fires:
        assert w.status == Status.REJECTED


@pytest.mark.parametrize(
    ("age", "fires"), [(timedelta(hours=23, minutes=59, seconds=59), True), (timedelta(hours=24), False)]
)
def test_new_account_cashout_boundary(sandbox_channel, age, fires):
    with time_machine.travel(T0, tick=False) as clock:
        m = MerchantFactory(credit=0)
        merchant_sale_settle(merchant_id=m.pk, order_ref="o1", amount=200_000, buyer="lonely_buyer")
        clock.shift(age)
        w = fresh(submit(m, amount=150_000))
    assert ("new_account_cashout" in w.risk_reasons) is fires
