"""The people around the platform, as the seed makes them behave: merchants selling and withdrawing (quotes,
step-ups answered right and wrong, cancellations, one-click retries — sometimes twice, from a stale tab),
reviewers working the review queue (approve, reject, two approvers for large amounts), operations (un-pausing
channels, following channel statements, editing fees). Everything goes through the services, and the retry
through the merchant page, as in production."""

from __future__ import annotations

import dataclasses
import re
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from accounts.services import login_record
from channels.models import Channel
from config.errors import DomainError
from config.money import yuan_label
from risk.models import SmsMessage
from risk.stepup import face_provider
from wallets.selectors import wallet_balances
from wallets.services import merchant_sale_settle
from withdrawals.fees import policy_current
from withdrawals.models import Speed, Status, Withdrawal, WithdrawalApproval
from withdrawals.services import (
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_face_complete,
    withdrawal_face_start,
    withdrawal_quote,
    withdrawal_reject,
    withdrawal_resend_code,
    withdrawal_stepup_method,
    withdrawal_submit,
    withdrawal_verify,
)

from .kernel import Kernel
from .observer import Observer
from .randomness import Dice
from .web import PlatformWeb
from .world import YUAN, SimMerchant, World, totp_token

CODE = re.compile(r"(\d{6})")
LARGE = 50_000 * YUAN


@dataclasses.dataclass
class Records:
    """What the simulation itself knows, independently of the platform's tables."""

    quoted_fee: dict[int, int] = dataclasses.field(default_factory=dict)
    merchant_of: dict[int, SimMerchant] = dataclasses.field(default_factory=dict)
    retries: dict[int, list[int]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    failures_seen: set[int] = dataclasses.field(default_factory=set)
    paused_since: dict[str, datetime] = dataclasses.field(default_factory=dict)


class Actors:
    def __init__(
        self, *, kernel: Kernel, dice: Dice, observer: Observer, world: World, web: PlatformWeb, records: Records
    ) -> None:
        self.kernel = kernel
        self.dice = dice
        self.obs = observer
        self.world = world
        self.web = web
        self.records = records
        self.accepting = True  # new sales, withdrawals and retries; off in the settle phase
        self._keys = 0

    # --- plumbing ------------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.kernel.clock.now

    def at(self, when: datetime, action: Callable[[], None], label: str) -> None:
        self.kernel.scheduler.at(when, lambda: self._guarded(action, label), label)

    def after(self, seconds: float, action: Callable[[], None], label: str) -> None:
        self.at(self.now + timedelta(seconds=seconds), action, label)

    def _guarded(self, action: Callable[[], None], label: str) -> None:
        """An action's unexpected error is a finding (a DomainError is an ordinary refusal, handled inside)."""
        started = time.perf_counter()
        try:
            action()
        except DatabaseError as exc:
            self.obs.finding("action_error", f"{label}: database error {exc}", detail=traceback.format_exc(), key=label)
        except Exception as exc:
            self.obs.finding(
                "action_error",
                f"{label}: {type(exc).__name__}: {exc}",
                detail=traceback.format_exc(),
                key=f"{label}:{type(exc).__name__}",
            )
        finally:
            self.obs.wall["people"] += time.perf_counter() - started

    def rng(self, name: str) -> Any:
        return self.dice.stream(name)

    # --- the day's plan --------------------------------------------------------------------------------------
    def plan_day(self, day_start: datetime) -> None:
        """Sales and withdrawal wishes of every merchant for the local day starting at ``day_start``."""
        rng = self.rng("plan")
        for m in self.world.merchants:
            for _ in range(self.dice.poisson("plan", m.sales_per_day)):
                when = day_start + timedelta(seconds=_daytime(rng, evening=True))
                self.at(when, partial(self.sale, m), "sale")
            for _ in range(self.dice.poisson("plan", m.withdrawals_per_day)):
                when = day_start + timedelta(seconds=_daytime(rng))
                self.at(when, partial(self.withdraw, m), "withdraw")
        # Reviewers' rounds through the queue, operations' rounds, merchants looking at their withdrawals.
        t = day_start + timedelta(hours=9)
        while t < day_start + timedelta(hours=22):
            t += timedelta(minutes=rng.uniform(20, 75))
            self.at(t, self.review_round, "review round")
        for minute in range(0, 24 * 60, 15):
            self.at(day_start + timedelta(minutes=minute + 7), self.ops_round, "ops round")
        for minute in range(8 * 60, 23 * 60, 30):
            self.at(day_start + timedelta(minutes=minute + rng.uniform(0, 20)), self.merchants_look, "merchants look")
        self.at(day_start + timedelta(hours=10, minutes=30), self.ops_statements, "ops statements")
        if rng.random() < 0.25:
            self.at(day_start + timedelta(seconds=_daytime(rng)), self.admin_edits_fees, "fee edit")

    # --- merchants -----------------------------------------------------------------------------------------
    def sale(self, m: SimMerchant) -> None:
        if not self.accepting:
            return
        rng = self.rng("sales")
        amount = max(100, int(rng.lognormvariate(0, 0.7) * m.sale_mean) // 100 * 100)
        n = self.obs.counts["sales"]
        merchant_sale_settle(merchant_id=m.id, order_ref=f"sim-{n}", amount=amount, buyer=f"buyer{rng.randint(1, 500)}")
        self.obs.count("sales")
        self.obs.count("sales_fen", amount)

    def withdraw(self, m: SimMerchant) -> None:
        if not self.accepting:
            return
        rng = self.rng("withdraw")
        if rng.random() < 0.05:  # a new phone or browser now and then
            m.devices.append(f"simdev-{self.dice.seed}-{m.index}-{len(m.devices)}")
        device = m.devices[-1] if rng.random() < 0.9 else rng.choice(m.devices)
        login_record(merchant=_merchant(m), ip=m.ip, device=device)
        roles = list(m.accounts)
        weights = [
            {"default": 8.0, "alipay": 1.5, "wechat": 1.5, "other_name": 0.3}.get(
                r, 1.0 if r.startswith("card_") else 0
            )
            for r in roles
        ]
        account_id = m.accounts[rng.choices(roles, weights=weights)[0]]
        kind = m.account_kinds[account_id]
        speed = rng.choices([Speed.STANDARD, Speed.INSTANT, Speed.T1], weights=[0.55, 0.25, 0.2])[0]
        available = wallet_balances(merchant_id=m.id).available
        roll = rng.random()
        if roll < 0.1 and available >= LARGE:
            amount = rng.randint(LARGE // YUAN, min(available, 99_000 * YUAN) // YUAN) * YUAN
        elif roll < 0.14:
            amount = max(available + rng.randint(1, 5000) * YUAN, 10 * YUAN)  # more than there is
        else:
            amount = int(available * rng.uniform(0.05, 0.9)) // YUAN * YUAN
        if amount < 10 * YUAN:
            self.obs.count("withdraw_wish_skipped_no_balance")
            return
        try:
            quote = withdrawal_quote(amount=amount, speed=speed, account_kind=kind)
        except DomainError as exc:
            self.obs.count(f"quote_refused:{exc.code}")
            return
        think = rng.uniform(3, 90) if rng.random() < 0.97 else rng.uniform(600, 2400)
        key = self._key()
        self.after(
            think,
            lambda: self.submit(
                m, account_id=account_id, amount=amount, speed=speed, fee=quote.fee, key=key, device=device
            ),
            "submit",
        )

    def rush(self) -> None:
        """A rush: every merchant with money withdraws to its bank card within minutes (amounts bank-direct
        carries cheapest, Alipay can take over)."""
        if not self.accepting:
            return
        rng = self.rng("rush")
        self.obs.count("rushes")
        for m in self.world.merchants:
            for _ in range(rng.randint(1, 3)):
                self.after(rng.uniform(0, 600), partial(self._rush_one, m), "rush withdraw")

    def _rush_one(self, m: SimMerchant) -> None:
        rng = self.rng("rush")
        available = wallet_balances(merchant_id=m.id).available
        top = min(45_000 * YUAN, int(available * 0.5))
        if top < 1_500 * YUAN:
            return
        amount = rng.randint(1_500, top // YUAN) * YUAN
        account_id = m.accounts["default"]
        try:
            quote = withdrawal_quote(amount=amount, speed=Speed.STANDARD, account_kind="bank_card")
        except DomainError as exc:
            self.obs.count(f"quote_refused:{exc.code}")
            return
        self.submit(
            m,
            account_id=account_id,
            amount=amount,
            speed=Speed.STANDARD,
            fee=quote.fee,
            key=self._key(),
            device=m.devices[-1],
        )

    def _key(self) -> str:
        self._keys += 1
        return f"sim-{self.dice.seed}-{self._keys}"

    def submit(
        self, m: SimMerchant, *, account_id: int, amount: int, speed: str, fee: int, key: str, device: str
    ) -> None:
        rng = self.rng("withdraw")
        try:
            result = withdrawal_submit(
                merchant_id=m.id,
                payout_account_id=account_id,
                amount=amount,
                speed=speed,
                idempotency_key=key,
                expected_fee=fee,
                actor=m.user,
                source="web",
                ip=m.ip,
                device=device,
            )
        except DomainError as exc:
            limit = (exc.details or {}).get("limit") if isinstance(exc.details, dict) else None
            self.obs.count(f"submit_refused:{exc.code}" + (f"({limit})" if limit else ""))
            return
        w = result.withdrawal
        self.obs.count("withdrawals_submitted")
        self._track(m, w, fee, f"submitted {yuan_label(amount)} {speed} → {w.status} (risk {w.risk_outcome})")
        if rng.random() < 0.03:  # a double click: the same key replays the same withdrawal
            again = withdrawal_submit(
                merchant_id=m.id, payout_account_id=account_id, amount=amount, speed=speed, idempotency_key=key,
                expected_fee=fee, actor=m.user, source="web", ip=m.ip, device=device,
            )  # fmt: skip
            self.obs.count("idempotent_replays")
            if again.created or again.withdrawal.pk != w.pk:
                self.obs.finding(
                    "idempotency", f"the same key {key} made a second withdrawal {again.withdrawal.pk}", w.pk
                )
        self.follow_up(m, w.pk, w.status)

    def _track(self, m: SimMerchant, w: Withdrawal, fee: int, text: str) -> None:
        self.records.quoted_fee[w.pk] = fee
        self.records.merchant_of[w.pk] = m
        self.obs.trace_withdrawal(w.pk, w.order_no, text)

    def follow_up(self, m: SimMerchant, withdrawal_id: int, status: str) -> None:
        rng = self.rng("follow")
        # A merchant whose money has not left after a few hours gives up and cancels (allowed while approved);
        # later than the stuck bound, so a stuck withdrawal is still reported.
        self.after(rng.uniform(3, 6) * 3600, lambda: self._impatient(m, withdrawal_id), "impatient")
        if status == Status.AWAITING_VERIFICATION:
            # Whatever happens to the codes, a merchant who never got through gives up within the day.
            self.after(rng.uniform(6, 20) * 3600, lambda: self._abandon(m, withdrawal_id), "abandon")
            late = rng.random() < 0.06
            self.after(
                rng.uniform(400, 900) if late else rng.uniform(10, 200), lambda: self.verify(m, withdrawal_id), "verify"
            )
        elif status == Status.APPROVED and rng.random() < 0.03:
            self.after(rng.uniform(0.05, 20), lambda: self.cancel(m, withdrawal_id, "changed mind"), "cancel")
        elif status == Status.PENDING_REVIEW and rng.random() < 0.05:
            self.after(rng.uniform(600, 4 * 3600), lambda: self.cancel(m, withdrawal_id, "tired of waiting"), "cancel")

    def _abandon(self, m: SimMerchant, withdrawal_id: int) -> None:
        if Withdrawal.objects.filter(pk=withdrawal_id, status=Status.AWAITING_VERIFICATION).exists():
            self.cancel(m, withdrawal_id, "never got through the step-up")

    def _impatient(self, m: SimMerchant, withdrawal_id: int) -> None:
        status = Withdrawal.objects.filter(pk=withdrawal_id).values_list("status", flat=True).first()
        if status == Status.APPROVED:
            self.cancel(m, withdrawal_id, "still not paid after hours")
        elif status in (Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION, Status.PROCESSING, Status.OUTCOME_UNKNOWN):
            rng = self.rng("follow")
            self.after(rng.uniform(3, 6) * 3600, lambda: self._impatient(m, withdrawal_id), "impatient")

    def cancel(self, m: SimMerchant, withdrawal_id: int, why: str) -> None:
        try:
            withdrawal_cancel(withdrawal_id=withdrawal_id, merchant_id=m.id, actor=m.user)
        except DomainError as exc:
            self.obs.count(f"cancel_refused:{exc.code}")
            self.obs.trace(withdrawal_id, f"merchant cancel ({why}) refused: {exc.code}")
            return
        self.obs.count("cancellations")
        self.obs.trace(withdrawal_id, f"merchant cancelled ({why})")

    def verify(self, m: SimMerchant, withdrawal_id: int, attempt: int = 0) -> None:
        w = Withdrawal.objects.filter(pk=withdrawal_id).only("status").first()
        if w is None or w.status != Status.AWAITING_VERIFICATION:
            return
        rng = self.rng("stepup")
        method = withdrawal_stepup_method(withdrawal_id=withdrawal_id)
        plan = rng.choices(["right", "wrong_then_right", "locked", "face", "give_up"], [0.8, 0.09, 0.03, 0.05, 0.03])[0]
        if attempt:
            plan = "right"
        if plan == "give_up":
            self.obs.count("stepup_abandoned")
            self.after(
                rng.uniform(1800, 6 * 3600), lambda: self.cancel(m, withdrawal_id, "gave up on the code"), "cancel"
            )
            return
        if plan == "face" or method == "face":
            self._face(m, withdrawal_id, passed=rng.random() < 0.85)
            return
        wrong = {"wrong_then_right": 1, "locked": 5}.get(plan, 0)
        for _ in range(wrong):
            if not self._answer(m, withdrawal_id, f"{rng.randint(0, 999_999):06d}", expect_ok=False):
                break
        if plan == "locked":
            self.obs.count("stepup_locked")
            self.after(rng.uniform(60, 1800), lambda: self.cancel(m, withdrawal_id, "locked out"), "cancel")
            return
        code = self._right_code(m, method)
        if code is not None and self._answer(m, withdrawal_id, code, expect_ok=True):
            return
        if attempt < 2:  # expired or locked: ask for a new code and try once more
            try:
                withdrawal_resend_code(withdrawal_id=withdrawal_id, merchant_id=m.id)
                self.obs.count("stepup_resend")
            except DomainError as exc:
                self.obs.count(f"stepup_resend_refused:{exc.code}")
                return
            self.after(rng.uniform(10, 120), lambda: self.verify(m, withdrawal_id, attempt + 1), "verify")

    def _right_code(self, m: SimMerchant, method: str) -> str | None:
        if method == "totp":
            from django_otp.plugins.otp_totp.models import TOTPDevice

            device = TOTPDevice.objects.filter(user=m.user, confirmed=True).first()
            return totp_token(device) if device is not None else None
        if "risk.sms" in sys.modules:  # step-up sends through risk.sms: the in-process outbox keeps the code
            from risk.sms import memory_sms_provider

            sent = memory_sms_provider().last(phone=m.phone)
            return str(sent.params.get("code", "")) if sent is not None else None
        # Older platforms: the dev SMS backend recorded the text in SmsMessage (the phone in the clear before
        # it was encrypted, found by its keyed hash since).
        if any(f.name == "phone_hash" for f in SmsMessage._meta.get_fields()):
            from config.crypto import pii_hash

            sent_to: dict[str, str] = {"phone_hash": pii_hash("phone", m.phone)}
        else:
            sent_to = {"phone": m.phone}
        sms = SmsMessage.objects.filter(merchant_id=m.id, **sent_to).order_by("-created_at", "-id").first()
        found = CODE.search(sms.text) if sms is not None else None
        return found.group(1) if found else None

    def _answer(self, m: SimMerchant, withdrawal_id: int, code: str, *, expect_ok: bool) -> bool:
        try:
            w = withdrawal_verify(withdrawal_id=withdrawal_id, merchant_id=m.id, code=code, actor=m.user)
        except DomainError as exc:
            self.obs.count(f"stepup_{'refused' if expect_ok else 'wrong'}:{exc.code}")
            self.obs.trace(withdrawal_id, f"step-up code {'(right)' if expect_ok else '(wrong)'} refused: {exc.code}")
            return False
        if not expect_ok:  # a random wrong code that happens to be right: one in a million
            self.obs.count("stepup_lucky_guess")
        self.obs.count("stepup_passed")
        self.obs.trace(withdrawal_id, f"step-up passed → {w.status}")
        return True

    def _face(self, m: SimMerchant, withdrawal_id: int, *, passed: bool) -> None:
        try:
            challenge = withdrawal_face_start(withdrawal_id=withdrawal_id, merchant_id=m.id)
            face_provider().sandbox_capture(session_id=challenge.destination, passed=passed)
            w = withdrawal_face_complete(withdrawal_id=withdrawal_id, merchant_id=m.id, actor=m.user)
        except DomainError as exc:
            self.obs.count(f"face_{'refused' if passed else 'failed'}:{exc.code}")
            self.obs.trace(withdrawal_id, f"face check {'passed' if passed else 'failed'}: {exc.code}")
            self.after(600, lambda: self.cancel(m, withdrawal_id, "face check failed"), "cancel")
            return
        self.obs.count("face_passed")
        self.obs.trace(withdrawal_id, f"face check passed → {w.status}")

    def merchants_look(self) -> None:
        """Merchants notice failed and returned withdrawals and retry some with one click (through the page)."""
        rng = self.rng("retry")
        fresh = Withdrawal.objects.filter(
            status__in=[Status.FAILED, Status.REVERSED], merchant_id__in=[m.id for m in self.world.merchants]
        ).exclude(pk__in=self.records.failures_seen)
        for w in fresh.order_by("pk").only("pk", "merchant_id", "status", "failure_code"):
            self.records.failures_seen.add(w.pk)
            m = next(x for x in self.world.merchants if x.id == w.merchant_id)
            if not self.accepting or rng.random() > 0.5:
                continue
            # The page is opened in two tabs now and then; the second click comes later, from the stale tab.
            tabs = 2 if rng.random() < 0.25 else 1
            forms = [self.web.retry_form(m.user, w.pk) for _ in range(tabs)]
            if forms[0] is None:
                self.obs.count("retry_not_offered")
                continue
            for n, form in enumerate(forms):
                if form is not None:
                    delay = rng.uniform(5, 600) + n * rng.uniform(60, 4 * 3600)
                    self.after(delay, self._retry_later(m, w.pk, form, n), "retry")

    def _retry_later(self, m: SimMerchant, withdrawal_id: int, form: dict[str, str], click: int) -> Callable[[], None]:
        return lambda: self.retry(m, withdrawal_id, form, click)

    def retry(self, m: SimMerchant, withdrawal_id: int, form: dict[str, str], click: int) -> None:
        new_id = self.web.retry_submit(m.user, withdrawal_id, form)
        if new_id is None:
            self.obs.count("retry_refused" if click else "retry_first_refused")
            self.obs.trace(withdrawal_id, f"one-click retry #{click + 1} made no new withdrawal")
            return
        w = Withdrawal.objects.get(pk=new_id)
        if new_id in self.records.quoted_fee:  # the page went to an existing withdrawal (a replay)
            self.obs.count("retry_replayed")
            return
        self.records.retries[withdrawal_id].append(new_id)
        self.obs.count("retries" if click == 0 else "retries_second_click")
        self._track(m, w, int(form["expected_fee"]), f"one-click retry #{click + 1} of {withdrawal_id} → {w.status}")
        self.obs.trace(withdrawal_id, f"one-click retry #{click + 1} made withdrawal {new_id}")
        self.follow_up(m, new_id, w.status)

    # --- reviewers -----------------------------------------------------------------------------------------
    def review_round(self) -> None:
        rng = self.rng("review")
        reviewer = rng.choice(self.world.reviewers)
        queue = Withdrawal.objects.filter(status=Status.PENDING_REVIEW).order_by("created_at", "pk")[:25]
        for w in queue:
            approvers = set(WithdrawalApproval.objects.filter(withdrawal=w).values_list("reviewer_id", flat=True))
            if reviewer.pk in approvers:
                if rng.random() < 0.2:  # tries to approve twice: the platform must refuse
                    self._approve(reviewer, w.pk, expect_refusal=True)
                continue
            reject_p = 0.3 if (w.risk_score or 0) >= 60 else 0.08
            if rng.random() < reject_p:
                try:
                    withdrawal_reject(withdrawal_id=w.pk, reviewer=reviewer, reason=rng.choice(REJECT_REASONS))
                except DomainError as exc:
                    self.obs.count(f"reject_refused:{exc.code}")
                    continue
                self.obs.count("reviews_rejected")
                self.obs.trace(w.pk, f"{reviewer.username} rejected")
            else:
                self._approve(reviewer, w.pk, expect_refusal=False)

    def _approve(self, reviewer: Any, withdrawal_id: int, *, expect_refusal: bool) -> None:
        try:
            w = withdrawal_approve(withdrawal_id=withdrawal_id, reviewer=reviewer, note="模拟审核")
        except DomainError as exc:
            self.obs.count(f"approve_refused:{exc.code}")
            if expect_refusal:
                self.obs.trace(withdrawal_id, f"{reviewer.username} approving again refused: {exc.code}")
            return
        if expect_refusal:
            self.obs.finding(
                "dual_approval",
                f"reviewer {reviewer.username} approved withdrawal {withdrawal_id} twice",
                withdrawal_id,
            )
        self.obs.count("reviews_approved")
        self.obs.trace(withdrawal_id, f"{reviewer.username} approved → {w.status}")

    # --- operations ----------------------------------------------------------------------------------------
    def ops_round(self) -> None:
        """Operations un-pause a channel the platform paused (funding topped up) 20–60 minutes later."""
        rng = self.rng("ops")
        for channel in Channel.objects.filter(paused=True, code__in=self.world.channel_codes):
            since = self.records.paused_since.setdefault(channel.code, self.now)
            if self.now - since >= timedelta(minutes=rng.uniform(20, 60)):
                Channel.objects.filter(pk=channel.pk).update(paused=False, paused_reason="")
                self.records.paused_since.pop(channel.code, None)
                self.obs.count("ops_unpaused")
                self.obs.trace(None, f"operations un-paused {channel.code} ({channel.paused_reason})")

    def ops_statements(self) -> None:
        """Operations follow the channel's statement where the services allow it (a bank return we missed)."""
        from channels.models import StatementDifference
        from withdrawals.reconciliation import statement_difference_apply_channel

        for d in StatementDifference.objects.filter(resolved_at__isnull=True).order_by("pk"):
            try:
                statement_difference_apply_channel(difference_id=d.pk, by=self.world.operator.username)
            except DomainError:
                self.obs.count("statement_differences_left_open")
                continue
            self.obs.count("statement_differences_followed")
            self.obs.trace_order(d.order_no, f"operations followed the statement ({d.kind}: {d.their_status})")

    def admin_edits_fees(self) -> None:
        """A fee change in the admin: quotes shown before it must be refused (quote_expired), never charged."""
        rng = self.rng("ops")
        policy = policy_current()
        speed = rng.choice(["standard", "instant", "t1"])
        field = f"{speed}_fee_fixed"
        setattr(policy, field, max(0, getattr(policy, field) + rng.choice([-50, 50, 100])))
        policy.save()
        self.obs.count("fee_edits")
        self.obs.trace(None, f"admin changed {field} to {getattr(policy, field)}")


REJECT_REASONS = ["收款账户与经营主体不符", "交易对手可疑", "资金来源需补充材料", "疑似套现"]


def _merchant(m: SimMerchant) -> Any:
    from accounts.models import Merchant

    return Merchant.objects.get(pk=m.id)


def _daytime(rng: Any, *, evening: bool = False) -> float:
    """Seconds into the local day, mostly between 08:00 and 23:30 (sales peak in the evening)."""
    if rng.random() < 0.06:
        return rng.uniform(0, 86400)
    hour = rng.triangular(8, 23.5, 20 if evening else 15)
    return hour * 3600


def local_midnight(when: datetime) -> datetime:
    local = timezone.localtime(when)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
