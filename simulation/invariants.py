"""What must hold after every simulated hour. Each check reads the platform's tables, the sandbox gateway's own
book and what the simulation itself recorded (the fee it was quoted, the retries it clicked); none writes.

Bounds on how long a withdrawal may wait in one state (from ``state_changed_at``), beyond which it is stuck:

- ``submitted``: 1 minute (submission decides in the same transaction; never seen from outside);
- ``approved``: 2 hours (routing retries every minute; a paused channel is un-paused within an hour), counted
  for a T+1 withdrawal from its batch time (the next working day at ``T1_BATCH_TIME``), which it must not pay
  before;
- ``processing``: 1 hour, 26 hours on WeChat (the payee has 24 hours to confirm);
- ``outcome_unknown``: 2 hours (queries back off to 5 minutes; outages and maintenance last under an hour);
- ``pending_review`` / ``awaiting_verification``: 48 hours — people, not the platform: the simulated reviewers
  work every day and merchants answer or cancel within a day, so longer means the platform lost it;
- from approval (or a T+1 withdrawal's batch time) to a final state: 27 hours; a payout the channel paid is
  booked within 2 hours; a bank return is booked (reversed) within 48 hours (the next statement, then
  operations); every day's statement of every channel is imported by 04:00 two days later.
"""

from __future__ import annotations

import io
import re
from collections import Counter, defaultdict
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Min, Sum
from django.utils import timezone

from accounts.models import Merchant, MerchantTier
from compliance.models import CustodyReconciliation, TransactionReport
from config.money import yuan_label
from wallets.models import Entry, LedgerAccount, Transfer
from withdrawals.fees import policy_current
from withdrawals.models import Status, Withdrawal, WithdrawalApproval, WithdrawalEvent

if TYPE_CHECKING:
    from .behaviour import Records
    from .channel import SimGateway
    from .observer import Observer

H = 3600
TASKS_PER_HOUR = 240  # payout / query tasks for one withdrawal in one hour (polling backs off to 5 minutes)
STATE_BOUNDS = {
    Status.SUBMITTED: 60,
    Status.APPROVED: 2 * H,
    Status.PROCESSING: 1 * H,
    Status.OUTCOME_UNKNOWN: 2 * H,
    Status.PENDING_REVIEW: 48 * H,
    Status.AWAITING_VERIFICATION: 48 * H,
}
WECHAT_PROCESSING_BOUND = 26 * H
APPROVED_TO_FINAL = 27 * H
PAID_TO_BOOKED = 2 * H
RETURN_TO_REVERSED = 48 * H
MONEY_STATES = {"succeeded", "returned", "processing", "awaiting_payee"}  # a payout that moved or may move money
UNPAID_FINAL = {Status.FAILED, Status.REJECTED, Status.CANCELLED}
REF = re.compile(r"^withdrawal:(\d+):")
K = LedgerAccount.Kind


class Checker:
    def __init__(self, *, observer: Observer, records: Records, gateway: SimGateway) -> None:
        self.obs = observer
        self.records = records
        self.gateway = gateway
        self._post_snapshot: dict[int, tuple[tuple[int, int], ...]] = {}
        self._reversal_checked: set[int] = set()  # reversals verified once (entries are append-only)
        self._has_retry_link = any(f.name == "retry_of" for f in Withdrawal._meta.get_fields())
        self._has_t1_batch = any(f.name == "pay_not_before" for f in Withdrawal._meta.get_fields())
        self._tier_threshold = any(f.name == "dual_approval_threshold" for f in MerchantTier._meta.get_fields())
        self.checks = 0

    @property
    def now(self) -> datetime:
        return self.obs.now

    def check(self) -> None:
        self.checks += 1
        for wid, n in self.obs.tasks_this_hour.items():
            if n > TASKS_PER_HOUR:
                self.fail(
                    "task_storm",
                    f"withdrawal {wid} got {n} payout/query tasks in the last hour (bound {TASKS_PER_HOUR}): copies "
                    "of its polling chain multiply",
                    wid,
                )
        self.obs.tasks_this_hour.clear()
        self.ledger()
        self.custody()
        self.releases()
        self.statements()
        self.withdrawals()

    # --- money ---------------------------------------------------------------------------------------------
    def ledger(self) -> None:
        err = io.StringIO()
        try:
            call_command("ledger_check", stdout=io.StringIO(), stderr=err)
        except CommandError:
            problems = [line.removeprefix("LEDGER PROBLEM: ") for line in err.getvalue().splitlines() if line]
            for p in problems:
                wid = _withdrawal_in(p)
                self.fail("ledger_check", f"ledger_check: {p}", wid, key=p)

    def custody(self) -> None:
        totals = dict(LedgerAccount.objects.values("kind").annotate(t=Sum("balance")).values_list("kind", "t"))
        merchant = sum(totals.get(k) or 0 for k in LedgerAccount.MERCHANT_KINDS)
        platform = totals.get(K.PLATFORM_FEE_REVENUE) or 0
        clearing = totals.get(K.CHANNEL_CLEARING) or 0
        suspense = totals.get(K.SUSPENSE) or 0
        custody = totals.get(K.CUSTODY) or 0
        if custody != merchant + platform + clearing - suspense:
            self.fail(
                "custody",
                f"custody {custody} ≠ merchants {merchant} + fee revenue {platform} + in transit {clearing} "
                f"− suspense {suspense} (off by {custody - (merchant + platform + clearing - suspense)})",
                key=f"{custody}-{merchant}",
            )
        for r in CustodyReconciliation.objects.exclude(ledger_difference=0):
            self.fail(
                "custody_reconciliation",
                f"custody reconciliation of {r.business_date} has a ledger difference of {r.ledger_difference} fen",
                key=str(r.business_date),
            )

    def releases(self) -> None:
        """Every sale is available after its freeze window plus one release run; the reserve fills first."""
        last_run = self.obs.last_run("wallets.release_due")
        if last_run is not None:
            pending = dict(LedgerAccount.objects.filter(kind=K.MERCHANT_PENDING).values_list("merchant_id", "balance"))
            not_yet_due = dict(
                Entry.objects.filter(
                    account__kind=K.MERCHANT_PENDING,
                    transfer__kind=Transfer.Kind.SALE_SETTLEMENT,
                    transfer__available_at__gt=last_run,
                )
                .values("account__merchant_id")
                .annotate(t=Sum("amount"))
                .values_list("account__merchant_id", "t")
            )
            for merchant_id, balance in pending.items():
                expected = -(not_yet_due.get(merchant_id) or 0)
                if balance > expected:
                    overdue = (
                        Transfer.objects.filter(
                            kind=Transfer.Kind.SALE_SETTLEMENT,
                            available_at__lte=last_run,
                            entries__account__kind=K.MERCHANT_PENDING,
                            entries__account__merchant_id=merchant_id,
                        )
                        .order_by("available_at")
                        .values_list("pk", "available_at")[:5]
                    )
                    listed = ", ".join(f"transfer {pk} due {at:%m-%d %H:%M}" for pk, at in overdue)
                    self.fail(
                        "release",
                        f"merchant {merchant_id}: {balance - expected} fen still pending although its freeze window "
                        f"passed before the release run at {last_run:%m-%d %H:%M} ({listed})",
                        key=f"m{merchant_id}",
                    )
                elif balance < expected:
                    self.fail(
                        "release",
                        f"merchant {merchant_id}: pending {balance} fen is less than the {expected} fen of sales "
                        "whose freeze window has not passed (released early?)",
                        key=f"m{merchant_id}-early",
                    )
        for m in Merchant.objects.filter(reserve_required__gt=0):
            reserve = LedgerAccount.objects.filter(kind=K.MERCHANT_RESERVE, merchant=m).values_list(
                "balance", flat=True
            )
            balance = reserve[0] if reserve else 0
            reached_available = Entry.objects.filter(
                account__kind=K.MERCHANT_AVAILABLE,
                account__merchant=m,
                amount__lt=0,
                transfer__kind__in=[Transfer.Kind.SALE_SETTLEMENT, Transfer.Kind.RELEASE],
            ).exists()
            if balance > m.reserve_required or (reached_available and balance != m.reserve_required):
                self.fail(
                    "reserve",
                    f"merchant {m.pk}: reserve {balance} fen, required {m.reserve_required}; sales reached available "
                    f"{'before' if reached_available else 'without'} the reserve was full",
                    key=f"m{m.pk}",
                )

    def statements(self) -> None:
        """Every day of the run is reconciled against every channel's statement by 04:00 two days later (the
        hourly reconcile fetches a statement again after a download timed out or its message was lost), or the
        lost callbacks of that day are never caught."""
        for line in statements_missing(self.obs, self.now):
            day, codes = line.split(" ", 2)[:2]
            self.fail("statement_missing", f"statement never imported: {line}", key=f"{codes}:{day}")

    # --- withdrawals and the channel's book ----------------------------------------------------------------
    def withdrawals(self) -> None:
        now = self.now
        rows = list(
            Withdrawal.objects.values(
                "pk", "order_no", "merchant_id", "status", "amount", "fee", "net_amount", "channel_code",
                "state_changed_at", "paid_at", "quote", *(["retry_of_id"] if self._has_retry_link else []),
                *(["pay_not_before"] if self._has_t1_batch else []),
            )
        )  # fmt: skip
        first = {
            status: dict(
                WithdrawalEvent.objects.filter(to_status=status)
                .values("withdrawal_id")
                .annotate(t=Min("created_at"))
                .values_list("withdrawal_id", "t")
            )
            for status in (Status.APPROVED, Status.PROCESSING)
        }
        book: dict[str, list[Any]] = defaultdict(list)
        for payout in self.gateway.store.payouts():
            book[payout.order_no].append(payout)
        approvals: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
        for wid, reviewer, at in WithdrawalApproval.objects.values_list("withdrawal_id", "reviewer_id", "created_at"):
            approvals[wid].append((reviewer, at))
        reports = Counter(
            TransactionReport.objects.filter(kind=TransactionReport.Kind.LARGE_VALUE).values_list(
                "subject_ref", flat=True
            )
        )
        children: dict[int, set[int]] = defaultdict(set)
        for old, new in self.records.retries.items():
            children[old].update(new)
        if self._has_retry_link:
            for r in rows:
                if r["retry_of_id"] is not None:
                    children[r["retry_of_id"]].add(r["pk"])
        postings = self._postings()
        policy = policy_current()
        thresholds = self._dual_thresholds(policy.dual_approval_threshold)
        last_compliance = self.obs.last_run("withdrawals.compliance_daily")
        large = settings.LARGE_VALUE_THRESHOLD_FEN

        for w in rows:
            wid, status = w["pk"], w["status"]
            payouts = book.get(w["order_no"], [])
            moving = [p for p in payouts if p.status in MONEY_STATES]
            # --- a T+1 withdrawal reaches a channel only in its batch --------------------------------------------
            sent_at = first[Status.PROCESSING].get(wid)
            if w.get("pay_not_before") is not None and sent_at is not None and sent_at < w["pay_not_before"]:
                self.fail(
                    "t1_before_batch",
                    f"T+1 withdrawal {wid} was sent to a channel at {sent_at:%Y-%m-%d %H:%M}, before its batch at "
                    f"{w['pay_not_before']:%Y-%m-%d %H:%M}",
                    wid,
                )
            # --- at most one payout per withdrawal, on its channel, none for an unpaid one ---------------------
            if len(moving) > 1:
                where = ", ".join(f"{p.channel}:{p.status}" for p in moving)
                self.fail("double_payout", f"withdrawal {wid} has {len(moving)} payouts at channels ({where})", wid)
            if status in UNPAID_FINAL and moving:
                self.fail(
                    "payout_for_unpaid",
                    f"withdrawal {wid} is {status} but {moving[0].channel} has its payout {moving[0].status}",
                    wid,
                )
            if status in (Status.PAID, Status.REVERSED):
                mine = [p for p in payouts if p.channel == w["channel_code"] and p.status in ("succeeded", "returned")]
                if len(mine) != 1:
                    self.fail(
                        "paid_without_payout",
                        f"withdrawal {wid} is {status} on {w['channel_code']} but that channel's book has "
                        f"{len(mine)} paid payouts for it",
                        wid,
                    )
                elif mine[0].amount != w["net_amount"]:
                    self.fail(
                        "payout_amount",
                        f"withdrawal {wid}: the channel paid {mine[0].amount}, net amount is {w['net_amount']}",
                        wid,
                    )
            for p in moving:
                changed = datetime.fromtimestamp(p.updated_at, now.tzinfo)
                if (
                    p.status == "succeeded"
                    and status != Status.PAID
                    and now - changed > timedelta(seconds=PAID_TO_BOOKED)
                ):
                    self.fail(
                        "paid_not_booked",
                        f"{p.channel} paid withdrawal {wid} at {changed:%m-%d %H:%M:%S}; it is still {status}",
                        wid,
                        key=p.channel,
                    )
                if (
                    p.status == "returned"
                    and status == Status.PAID
                    and now - changed > timedelta(seconds=RETURN_TO_REVERSED)
                ):
                    self.fail(
                        "return_not_booked",
                        f"{p.channel} returned withdrawal {wid} at {changed:%m-%d %H:%M}; it is still paid",
                        wid,
                    )
            if status == Status.REVERSED:
                if not any(p.status == "returned" for p in payouts):
                    self.fail("reversed_without_return", f"withdrawal {wid} is reversed; no channel returned it", wid)
                self._reversal(wid, postings)
            if status in (Status.PAID, Status.REVERSED):
                self._posting(w, postings)
            # --- fee charged = fee quoted -------------------------------------------------------------------
            quoted = self.records.quoted_fee.get(wid)
            if quoted is not None and (w["fee"] != quoted or w["amount"] - w["fee"] != w["net_amount"]):
                self.fail("fee", f"withdrawal {wid} was quoted a fee of {quoted}, charged {w['fee']}", wid)
            # --- retries, dual approval, reports ------------------------------------------------------------
            if len(children.get(wid, ())) > 1:
                self.fail(
                    "second_retry",
                    f"failed withdrawal {wid} was retried {len(children[wid])} times: {sorted(children[wid])}",
                    wid,
                )
            threshold = thresholds.get(w["merchant_id"], policy.dual_approval_threshold)
            processing_at = first[Status.PROCESSING].get(wid)
            if w["amount"] >= threshold and processing_at is not None:
                before = {r for r, at in approvals.get(wid, []) if at <= processing_at}
                if len(before) < 2:
                    self.fail(
                        "dual_approval",
                        f"withdrawal {wid} of {yuan_label(w['amount'])} (≥ {yuan_label(threshold)}) went to processing "
                        f"with {len(before)} approver(s)",
                        wid,
                    )
            if (
                status == Status.PAID
                and w["amount"] >= large
                and last_compliance is not None
                and w["paid_at"] is not None
                and w["paid_at"] <= last_compliance
            ):
                n = reports.get(f"withdrawal:{wid}", 0)
                if n != 1:
                    self.fail(
                        "large_value_report",
                        f"paid withdrawal {wid} of {yuan_label(w['amount'])} has {n} large-value reports after the "
                        f"compliance run at {last_compliance:%m-%d %H:%M}",
                        wid,
                    )
            # --- nothing stuck ------------------------------------------------------------------------------
            bound = STATE_BOUNDS.get(status)
            if bound is not None:
                if status == Status.PROCESSING and w["channel_code"] == "wechat":
                    bound = WECHAT_PROCESSING_BOUND
                batch_at = w.get("pay_not_before")
                since = w["state_changed_at"]
                if status == Status.APPROVED and batch_at is not None:
                    since = max(since, batch_at)
                waited = (now - since).total_seconds()
                if waited > bound:
                    self.fail(
                        "stuck",
                        f"withdrawal {wid} has been {status} for {waited / 3600:.1f} h (bound {bound / 3600:g} h)",
                        wid,
                        key=status,
                    )
                approved_at = first[Status.APPROVED].get(wid)
                if approved_at is not None and batch_at is not None:
                    approved_at = max(approved_at, batch_at)
                if approved_at is not None and (now - approved_at).total_seconds() > APPROVED_TO_FINAL:
                    self.fail(
                        "stuck",
                        f"withdrawal {wid} was approved {(now - approved_at).total_seconds() / 3600:.1f} h ago and is "
                        f"still {status} (bound {APPROVED_TO_FINAL / 3600:g} h)",
                        wid,
                        key="approved_to_final",
                    )

    def _dual_thresholds(self, default: int) -> dict[int, int]:
        if not self._tier_threshold:
            return {}
        out: dict[int, int] = {}
        for merchant_id, value in Merchant.objects.filter(tier__dual_approval_threshold__isnull=False).values_list(
            "pk", "tier__dual_approval_threshold"
        ):
            out[merchant_id] = min(default, int(value or default))
        return out

    def _postings(self) -> dict[int, dict[str, Any]]:
        """Per withdrawal: its posting transfer (held → clearing + revenue) and any reversal of it."""
        out: dict[int, dict[str, Any]] = {}
        posts = Transfer.objects.filter(kind=Transfer.Kind.POST, reference__startswith="withdrawal:")
        for t in posts.values("pk", "reference"):
            m = REF.match(t["reference"])
            if m:
                out.setdefault(int(m.group(1)), {"posts": [], "reversals": []})["posts"].append(t["pk"])
        post_ids = {pk: wid for wid, v in out.items() for pk in v["posts"]}
        for pk, reverses in Transfer.objects.filter(
            kind=Transfer.Kind.REVERSE, reverses__in=list(post_ids)
        ).values_list("pk", "reverses_id"):
            out[post_ids[reverses]]["reversals"].append(pk)
        return out

    def _posting(self, w: dict[str, Any], postings: dict[int, dict[str, Any]]) -> None:
        wid = w["pk"]
        mine = postings.get(wid, {"posts": []})["posts"]
        if len(mine) != 1:
            self.fail("ledger_post", f"withdrawal {wid} is {w['status']} with {len(mine)} posting transfers", wid)
            return
        post = mine[0]
        if post in self._post_snapshot:
            return
        legs = list(Entry.objects.filter(transfer_id=post).values_list("account__kind", "amount", "account_id"))
        by_kind: Counter[str] = Counter()
        for kind, amount, _ in legs:
            by_kind[kind] += amount
        if (
            by_kind[K.MERCHANT_HELD] != w["amount"]
            or -by_kind[K.CHANNEL_CLEARING] != w["net_amount"]
            or -by_kind[K.PLATFORM_FEE_REVENUE] != w["fee"]
        ):
            self.fail(
                "ledger_post",
                f"withdrawal {wid}: posting moved held {by_kind[K.MERCHANT_HELD]}, clearing "
                f"{-by_kind[K.CHANNEL_CLEARING]}, fee {-by_kind[K.PLATFORM_FEE_REVENUE]}; expected {w['amount']}, "
                f"{w['net_amount']}, {w['fee']}",
                wid,
            )
        self._post_snapshot[post] = tuple(sorted((acc, amount) for _, amount, acc in legs))

    def _reversal(self, wid: int, postings: dict[int, dict[str, Any]]) -> None:
        if wid in self._reversal_checked:
            return
        self._reversal_checked.add(wid)
        entry = postings.get(wid)
        if entry is None or len(entry["posts"]) != 1 or len(entry["reversals"]) != 1:
            self.fail(
                "reversal",
                f"reversed withdrawal {wid} has {len(entry['posts']) if entry else 0} postings and "
                f"{len(entry['reversals']) if entry else 0} reversals (want exactly one of each)",
                wid,
            )
            return
        post, reversal = entry["posts"][0], entry["reversals"][0]
        legs = tuple(sorted(Entry.objects.filter(transfer_id=post).values_list("account_id", "amount")))
        negated = tuple(
            sorted((a, -x) for a, x in Entry.objects.filter(transfer_id=reversal).values_list("account_id", "amount"))
        )
        snapshot = self._post_snapshot.get(post)
        if snapshot is not None and legs != snapshot:
            self.fail("reversal", f"withdrawal {wid}: the posting transfer {post} was edited after it was paid", wid)
        if legs != negated:
            self.fail("reversal", f"withdrawal {wid}: reversal {reversal} does not negate posting {post}", wid)

    # --- reporting ---------------------------------------------------------------------------------------------
    def fail(self, invariant: str, message: str, withdrawal_id: int | None = None, key: str = "") -> None:
        if not self.obs.finding(invariant, message, withdrawal_id, key=key):
            return
        if withdrawal_id is not None:
            self.obs.findings[-1].evidence = self.evidence(withdrawal_id)

    def evidence(self, withdrawal_id: int) -> list[str]:
        w = Withdrawal.objects.filter(pk=withdrawal_id).select_related("payout_account").first()
        if w is None:
            return []
        lines = [
            f"withdrawal {w.pk} {w.order_no} merchant {w.merchant_id} {yuan_label(w.amount)} fee {w.fee} "
            f"{w.speed} to {w.payout_account.kind} …{w.payout_account.account_number[-4:]} status {w.status} "
            f"channel {w.channel_code or '-'} risk {w.risk_outcome} approvals required {w.required_approvals}"
        ]
        repeated, last = 0, None
        for e in w.events.select_related("actor").order_by("created_at", "pk"):
            actor = e.actor.username if e.actor is not None else e.actor_label
            what = (e.from_status, e.to_status, actor, e.reason)
            if what == last:
                repeated += 1
                continue
            if repeated:
                lines.append(f"  event   … the same {repeated} more time(s)")
            repeated, last = 0, what
            lines.append(
                f"  event {self.obs.stamp_of(e.created_at)} {e.from_status or '·'} → {e.to_status} [{actor}] {e.reason}"
            )
        if repeated:
            lines.append(f"  event   … the same {repeated} more time(s), the last at {self.obs.stamp_of(e.created_at)}")
        for p in self.gateway.store.payouts(order_no=w.order_no):
            lines.append(
                f"  gateway {p.channel}: {p.status} {p.provider_code} amount {p.amount} submissions {p.submissions} "
                f"created {self.obs.stamp_of(datetime.fromtimestamp(p.created_at, self.now.tzinfo))}"
            )
        trace = self.obs.trace_for(w.pk)
        if len(trace) > 40:
            lines.append(f"  sim … {len(trace) - 40} earlier lines")
        lines.extend(f"  sim {line}" for line in trace[-40:])
        return lines


def _withdrawal_in(text: str) -> int | None:
    m = re.search(r"withdrawal[: ](\d+)", text)
    return int(m.group(1)) if m else None


def statements_missing(obs: Observer, now: datetime) -> list[str]:
    """Days of the run whose statement of a channel was not imported by 04:00 two days later, with the reconcile
    runs and lost reconcile messages of the day after (the ``statement_missing`` invariant, and the figures)."""
    from channels.models import StatementImport
    from channels.reconciliation import statement_channels

    local = timezone.localtime(now)
    imported = set(StatementImport.objects.values_list("channel_code", "date"))
    task = "withdrawals.reconcile_channels"
    out = []
    day = timezone.localdate(obs.start)
    while datetime.combine(day + timedelta(days=2), time(4, 0), tzinfo=local.tzinfo) <= local:
        missing = [code for code in statement_channels() if (code, day) not in imported]
        if missing:
            start = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=local.tzinfo)
            ran = [t for t in obs.job_runs.get(task, []) if start <= t < start + timedelta(hours=28)]
            lost = [t for t in obs.lost_messages.get(task, []) if start <= t < start + timedelta(hours=28)]
            why = f"reconcile ran {', '.join(f'{t:%m-%d %H:%M}' for t in ran)}" if ran else "reconcile did not run"
            if lost:
                why += f", its message lost {', '.join(f'{t:%m-%d %H:%M}' for t in lost)}"
            out.append(f"{day} {'+'.join(missing)} ({why})")
        day += timedelta(days=1)
    return out
