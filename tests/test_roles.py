"""Least privilege as a tested matrix: every role group × every registered admin page × action.

``MATRIX`` below is the specification, written by hand from what each role needs:

* reviewers review withdrawals (the review console's approve / reject) and see the merchant, its KYC and
  accounts masked; a senior reviewer also resolves stuck payouts and sets the withdrawal policy;
* compliance files AML reports, reads the ledger and the audit trail, freezes merchants and changes a KYC
  identity only through the service that resets verification;
* operations handle channels' operational fields (pause / resume, quotas, maintenance windows), alerts,
  statement differences and stuck payouts — never a channel's protocol config;
* support sees merchants and withdrawals, masked, and nothing that moves money;
* channel admins propose and approve (two different people) channel endpoint / key changes;
* the privacy officer is the only role that reveals full numbers, each reveal audited;
* a merchant login is not staff: no admin page at all; the superuser has everything the admin offers.

Actions, tried over HTTP as the role: ``v`` the list page, ``a`` the add page, ``c`` a POST to an object's change
page (refused = 403), ``d`` the delete confirmation page, ``h`` a POST to the history form (a revert — refused
for everybody), plus each model admin's bulk actions and the custom views (review console, ops page, reveal,
KYC identity page, channel config approval and rejection, statement difference resolution). Every admin
registered on the site must be in the table, so a new model fails this test until someone decides who may touch it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, KycRecord, Merchant, Notification
from accounts.roles import ROLE_PERMISSIONS
from accounts.services import api_key_create, pii_reveal, tiers_active
from channels.config_changes import channel_config_change_approve, channel_config_change_propose
from channels.health import channel_alert_raise
from channels.models import (
    CallbackReceipt,
    Channel,
    ChannelAlert,
    ChannelBreaker,
    ChannelConfigChange,
    SandboxPayout,
    StatementDifference,
    StatementImport,
)
from compliance.services import report_draft
from risk.models import (
    LearningLoopRun,
    ModelVersion,
    RiskDecisionLog,
    RiskLabel,
    RiskListEntry,
    RuleSetVersion,
    SmsMessage,
    StepUpChallenge,
)
from tests.factories import MerchantFactory
from tests.staff import staff_client, staff_user
from withdrawals.fees import policy_current
from withdrawals.models import Status, Withdrawal
from workdays.models import CalendarDay

pytestmark = pytest.mark.django_db(transaction=True)

# role group → column in MATRIX ("superuser" is no group: a superuser account)
ROLES = {
    "merchant": "M",
    "reviewer": "R",
    "senior_reviewer": "S",
    "compliance_officer": "C",
    "operations": "O",
    "support": "P",
    "channel_admin": "A",
    "privacy_officer": "D",
    "superuser": "U",
}
_ = ""
# model → {role letter: allowed actions}; a role not listed may do nothing there.
MATRIX: dict[str, dict[str, str]] = {
    "accounts.apikey": {"U": "vcd"},
    "accounts.auditevent": {"C": "v", "D": "v", "U": "v"},
    "accounts.kycrecord": {"R": "v", "S": "v", "C": "v", "D": "v", "U": "v"},
    "accounts.merchant": {"R": "v", "S": "v", "C": "vc", "P": "v", "D": "v", "U": "vac"},
    "accounts.merchanttier": {"U": "vacd"},
    "accounts.notification": {"U": "vacd"},
    "accounts.payoutaccount": {"R": "v", "S": "v", "C": "v", "D": "v", "U": "vc"},
    "accounts.user": {"U": "vacd"},
    "auth.group": {"U": "vacd"},
    "compliance.custodyreconciliation": {"C": "v", "U": "v"},
    "compliance.screeninghit": {"C": "v", "U": "v"},
    "compliance.screeninglist": {"C": "v", "U": "v"},
    "compliance.transactionreport": {"C": "v", "U": "v"},
    "payment_channels.callbackreceipt": {"O": "v", "A": "v", "U": "v"},
    "payment_channels.channel": {"O": "vc", "A": "v", "U": "vac"},
    "payment_channels.channelalert": {"O": "v", "A": "v", "U": "v"},
    "payment_channels.channelbreaker": {"O": "v", "A": "v", "U": "v"},
    "payment_channels.channelconfigchange": {"A": "va", "U": "va"},
    "payment_channels.opsdashboard": {"O": "v", "A": "v", "U": "v"},
    "payment_channels.sandboxpayout": {"U": "v"},
    "payment_channels.statementdifference": {"O": "v", "A": "v", "U": "v"},
    "payment_channels.statementimport": {"O": "v", "A": "v", "U": "v"},
    "risk.learninglooprun": {"U": "vcd"},
    "risk.modelversion": {"U": "vacd"},
    "risk.riskdecisionlog": {"U": "vd"},
    "risk.risklabel": {"U": "vacd"},
    "risk.risklistentry": {"U": "vacd"},
    "risk.rulesetversion": {"U": "vacd"},
    "risk.smsmessage": {"U": "vd"},  # a log of what was sent: read-only, the phone masked
    "risk.stepupchallenge": {"U": "vacd"},
    "wallets.entry": {"C": "v", "U": "v"},
    "wallets.ledgeraccount": {"C": "v", "O": "v", "U": "v"},
    "wallets.transfer": {"C": "v", "O": "v", "U": "v"},
    "webhooks.webhookdelivery": {"O": "v", "U": "v"},  # the delivery log: read-only, replay is a bulk action
    "webhooks.webhookendpoint": {"O": "v", "U": "v"},  # read-only: the merchants register and enable them
    "withdrawals.reviewqueue": {"R": "v", "S": "v", "C": "v", "O": "v", "P": "v", "U": "v"},
    "withdrawals.withdrawal": {"R": "v", "S": "v", "C": "v", "O": "v", "P": "v", "U": "v"},
    "withdrawals.withdrawalpolicy": {"S": "vc", "U": "vacd"},
    "workdays.calendarday": {"C": "v", "O": "v", "U": "vacd"},
}
# Bulk actions (besides Django's delete_selected, covered by "d") per model and role.
BULK_ACTIONS: dict[str, dict[str, set[str]]] = {
    "compliance.transactionreport": {
        "C": {"review_reports", "file_reports", "export_csv", "export_xml"},
        "U": {"review_reports", "file_reports", "export_csv", "export_xml"},
    },
    "payment_channels.channelalert": {"O": {"acknowledge"}, "U": {"acknowledge"}},
    "payment_channels.statementdifference": {"O": {"follow_statement"}, "U": {"follow_statement"}},
    "webhooks.webhookdelivery": {"O": {"replay"}, "U": {"replay"}},
}
# Admins of third-party apps the security work adds (lockout, staff OTP devices): superuser only, whatever
# their own admin offers (they are not ours to narrow).
THIRD_PARTY_SUPERUSER_ONLY = {"axes", "otp_totp", "otp_static", "otp_email", "otp_hotp"}


def _model_label(model: Any) -> str:
    return model._meta.label_lower


def _registered() -> dict[str, tuple[Any, Any]]:
    return {_model_label(m): (m, a) for m, a in admin.site._registry.items()}


def test_every_registered_admin_is_in_the_matrix() -> None:
    ours = {label for label in _registered() if label.split(".")[0] not in THIRD_PARTY_SUPERUSER_ONLY}
    assert sorted(ours - set(MATRIX)) == [], "a new admin page: decide in MATRIX who may do what with it"
    assert sorted(set(MATRIX) - ours) == []


@pytest.fixture
def world(sandbox_channel, monkeypatch):
    """At least one row behind every admin page, and one staff user (logged in, second factor verified) per
    role."""
    import withdrawals.services as services

    users = {letter: staff_user(f"role_{letter.lower()}", None if role == "superuser" else role)
             for role, letter in ROLES.items()}  # fmt: skip
    merchant = MerchantFactory(name="Matrix 商户", real_name="张三", credit=5_000_000)
    real = services.risk_assess_withdrawal
    monkeypatch.setattr(services, "risk_assess_withdrawal", lambda *, event: _with_outcome(real(event=event), "review"))
    account = merchant.payout_accounts.get()
    w = services.withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=30_000).withdrawal
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PENDING_REVIEW
    policy_current()
    tiers_active()
    channel = Channel.objects.get(code="sandbox")
    channel_alert_raise(kind=ChannelAlert.Kind.BREAKER_OPENED, channel_code="sandbox", title="breaker opened")
    ChannelBreaker.objects.get_or_create(
        channel=channel, defaults={"changed_at": w.created_at, "window_since": w.created_at}
    )
    CallbackReceipt.objects.create(channel_code="sandbox", notify_id="n1", order_no=w.order_no, outcome="applied")
    statement = StatementImport.objects.create(
        channel_code="sandbox", date=w.created_at.date(), imported_at=w.created_at
    )
    StatementDifference.objects.create(statement=statement, channel_code="sandbox", order_no=w.order_no,
                                       kind=StatementDifference.Kind.MISSING_ON_THEIRS)  # fmt: skip
    SandboxPayout.objects.create(
        order_no="SB1", channel_code="sandbox", amount=1, currency="CNY", account_number=account.account_number,
        holder_name="张三", status="succeeded",
    )  # fmt: skip
    channel_config_change_propose(channel_id=channel.pk, config={"delay_seconds": 1}, reason="matrix", by=users["A"])
    report_draft(kind="suspicious", subject_ref=f"w{w.pk}", merchant_id=merchant.pk, merchant_name=merchant.name,
                 amount=w.amount, occurred_at=w.created_at, grounds=["matrix"])  # fmt: skip
    from compliance.models import CustodyReconciliation

    CustodyReconciliation.objects.create(
        **{f.name: (w.created_at.date() if f.get_internal_type() == "DateField" else 0)
           for f in CustodyReconciliation._meta.fields if not f.primary_key and not f.null and not f.has_default()}
    )  # fmt: skip
    RiskListEntry.objects.create(kind="ip", value="10.0.0.1", reason="matrix")
    CalendarDay.objects.create(date=w.created_at.date(), kind=CalendarDay.Kind.HOLIDAY, name="matrix")
    RiskLabel.objects.create(withdrawal_ref=str(w.pk), fraud=False, source="review_approved")
    RuleSetVersion.objects.create(version="matrix-1", rules={"rules": []})
    ModelVersion.objects.create(version="matrix-1", artifact={})
    LearningLoopRun.objects.create(ran_at=w.created_at, window_start=w.created_at)
    SmsMessage.objects.create(merchant_id=merchant.pk, phone="", text="matrix", backend="memory")
    StepUpChallenge.objects.create(subject="withdrawal:0", merchant_id=merchant.pk, expires_at=w.created_at)
    pii_reveal(target=merchant.kyc, by=users["U"], reason="matrix")
    api_key_create(merchant=merchant, label="matrix")
    from webhooks.services import endpoint_create, endpoint_test_send

    endpoint, _secret = endpoint_create(merchant_id=merchant.pk, url="http://127.0.0.1:9/matrix")
    with monkeypatch.context() as patched:  # the row only: nothing is sent
        patched.setattr("webhooks.services.deliveries_enqueue", lambda ids: None)
        endpoint_test_send(endpoint_id=endpoint.pk)
    Notification.objects.create(merchant=merchant, kind="matrix", title="matrix")
    assert RiskDecisionLog.objects.exists() and AuditEvent.objects.exists()
    clients = {letter: _client(user) for letter, user in users.items()}
    return {"merchant": merchant, "withdrawal": w, "users": users, "clients": clients}


def _with_outcome(decision: Any, outcome: str) -> Any:
    import dataclasses

    return dataclasses.replace(decision, outcome=outcome)


def _client(user: Any) -> Client:
    if not user.is_staff:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client
    return staff_client(user)


def _allowed(response: Any) -> bool:
    """200, or a redirect that is not to the login / second-factor pages."""
    if response.status_code == 200:
        return True
    if response.status_code == 302:
        where = response["Location"]
        return "/login" not in where and "/otp" not in where
    return False


def _url(model: Any, name: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def _object(model: Any) -> Any:
    if model._meta.label_lower == "withdrawals.reviewqueue":
        return Withdrawal.objects.filter(status=Status.PENDING_REVIEW).first()
    return model._default_manager.order_by("pk").first()


def test_role_matrix(world):
    mismatches = []
    for label, (model, model_admin) in sorted(_registered().items()):
        # third-party admins: the superuser gets whatever the app's admin offers; nobody else anything
        third_party = label.split(".")[0] in THIRD_PARTY_SUPERUSER_ONLY
        spec: dict[str, str | None] = {"U": None} if third_party else dict(MATRIX[label])
        obj = _object(model)
        for role, letter in ROLES.items():
            client = world["clients"][letter]
            expected = spec.get(letter, "")
            actual = ""
            if _allowed(client.get(_url(model, "changelist"))):
                actual += "v"
            if _allowed(client.get(_url(model, "add"))):
                actual += "a"
            if obj is not None:
                # 200: the form came back with errors; 302 elsewhere than the login: saved. Either way allowed.
                if _allowed(client.post(_url(model, "change", obj.pk), {})):
                    actual += "c"
                if _allowed(client.get(_url(model, "delete", obj.pk))):
                    actual += "d"
                history = getattr(model_admin, "history_form_view", None)
                version = obj.history.order_by("history_id").first() if history and hasattr(obj, "history") else None
                if version is not None:
                    url = _url(model, "simple_history", obj.pk, version.history_id)
                    if _allowed(client.post(url, {})):
                        actual += "h"
            if expected is None:
                continue
            if actual != expected:
                mismatches.append(f"{label} {role}: expected {expected!r}, got {actual!r}")
    assert mismatches == [], "\n".join(mismatches)


def test_bulk_actions(world):
    from django.test import RequestFactory

    mismatches = []
    for label, (_model, model_admin) in sorted(_registered().items()):
        if label.split(".")[0] in THIRD_PARTY_SUPERUSER_ONLY:
            continue
        for role, letter in ROLES.items():
            request = RequestFactory().get("/admin/")
            request.user = world["users"][letter]
            can_see = model_admin.has_view_or_change_permission(request)  # actions live on the list page
            actions = set(model_admin.get_actions(request)) - {"delete_selected"} if can_see else set()
            expected = BULK_ACTIONS.get(label, {}).get(letter, set())
            if actions != expected:
                mismatches.append(f"{label} {role}: expected {sorted(expected)}, got {sorted(actions)}")
    assert mismatches == [], "\n".join(mismatches)


# --- custom views ----------------------------------------------------------------------------------------
REVIEWERS = {"R", "S", "U"}


def test_review_console_approve_and_reject(world):
    w = world["withdrawal"]
    for letter, client in world["clients"].items():
        if letter in REVIEWERS:
            continue
        client.post(reverse("admin:withdrawals_withdrawal_approve", args=[w.pk]))
        client.post(reverse("admin:withdrawals_withdrawal_reject", args=[w.pk]), {"reason": "x"})
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PENDING_REVIEW and not w.approvals.exists()
    world["clients"]["R"].post(reverse("admin:withdrawals_withdrawal_approve", args=[w.pk]))
    assert Withdrawal.objects.get(pk=w.pk).status != Status.PENDING_REVIEW


def test_ops_page(world):
    alert = ChannelAlert.objects.get()
    for letter, client in world["clients"].items():
        assert _allowed(client.get("/admin/ops/")) == (letter in {"O", "A", "U"}), letter
        client.post("/admin/ops/", {"alert_id": alert.pk})
        alert.refresh_from_db()
        assert (alert.acknowledged_at is not None) == (letter in {"O", "U"} and alert.acknowledged_by != ""), letter
        ChannelAlert.objects.filter(pk=alert.pk).update(acknowledged_at=None, acknowledged_by="")


def test_reveal_and_identity_pages(world):
    kyc = KycRecord.objects.get(merchant=world["merchant"])
    account = world["merchant"].payout_accounts.get()
    for letter, client in world["clients"].items():
        before = AuditEvent.objects.count()
        for url in (
            f"/admin/accounts/kycrecord/{kyc.pk}/reveal/",
            f"/admin/accounts/payoutaccount/{account.pk}/reveal/",
        ):
            response = client.post(url, {"reason": "matrix"})
            assert _allowed(response) == (letter in {"D", "U"}), (letter, url)
        assert AuditEvent.objects.count() - before == (2 if letter in {"D", "U"} else 0)
        identity = client.get(f"/admin/accounts/kycrecord/{kyc.pk}/identity/")
        assert _allowed(identity) == (letter in {"C", "U"}), letter
    assert Merchant.objects.get(pk=world["merchant"].pk).kyc.status == "verified"


def test_channel_config_approval(world):
    change = ChannelConfigChange.objects.get()
    for letter, client in world["clients"].items():
        if letter == "U":
            continue
        client.post(reverse("admin:payment_channels_channelconfigchange_approve", args=[change.pk]))
        change.refresh_from_db()
        assert change.status == ChannelConfigChange.Status.PENDING, letter  # A proposed it: not theirs to approve
    world["clients"]["U"].post(reverse("admin:payment_channels_channelconfigchange_approve", args=[change.pk]))
    change.refresh_from_db()
    assert change.status == ChannelConfigChange.Status.APPLIED


def test_channel_config_reject(world):
    """Turning a proposal down: an approver, or its proposer withdrawing it; nobody else."""
    change = ChannelConfigChange.objects.get()
    for letter, client in world["clients"].items():
        if letter in {"A", "U"}:
            continue
        client.post(reverse("admin:payment_channels_channelconfigchange_reject", args=[change.pk]), {"note": "x"})
        change.refresh_from_db()
        assert change.status == ChannelConfigChange.Status.PENDING, letter
    world["clients"]["A"].post(reverse("admin:payment_channels_channelconfigchange_reject", args=[change.pk]))
    change.refresh_from_db()
    assert change.status == ChannelConfigChange.Status.REJECTED and change.decided_by == world["users"]["A"]


def test_statement_difference_resolve(world):
    """Resolving a statement difference by hand: who sees the differences and resolves payouts (operations, the
    superuser) — not a senior reviewer, who resolves stuck payouts but never sees the channels' statements."""
    difference = StatementDifference.objects.get()
    url = reverse("admin:payment_channels_statementdifference_resolve", args=[difference.pk])
    for letter, client in world["clients"].items():
        if letter in {"O", "U"}:
            continue
        client.post(url, {"note": "matrix"})
        difference.refresh_from_db()
        assert difference.resolved_at is None, letter
    world["clients"]["O"].post(url, {"note": "matrix"})
    difference.refresh_from_db()
    assert difference.resolved_at is not None and difference.resolved_by == world["users"]["O"].get_username()


# --- the demo's staff --------------------------------------------------------------------------------------
def test_demo_staff_have_exactly_their_roles_permissions(sandbox_channel, settings):
    """``make run`` seeds a staff login per role (two channel admins: a config change takes two people); each has
    exactly its role's permissions, and the two channel admins can carry a change through between them."""
    import io

    from django.core.management import call_command

    from accounts.models import User
    from operations.demo import STAFF

    settings.DEMO_MODE = True
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo", stdout=out)  # again: nothing changes
    seeded: dict[str, list[str]] = {}
    for username, _label, role in STAFF:
        user = User.objects.get(username=username)
        assert user.is_staff and user.is_active and user.merchant_id is None, username
        assert username in out.getvalue()  # printed in the banner, with its TOTP seed
        if role is None:
            assert user.is_superuser, username
            continue
        assert not user.is_superuser and [g.name for g in user.groups.all()] == [role], username
        assert user.get_all_permissions() == set(ROLE_PERMISSIONS[role]), username
        seeded.setdefault(role, []).append(username)
    assert set(seeded) == set(ROLE_PERMISSIONS) - {"merchant"}  # every staff role has a demo login
    assert len(seeded["channel_admin"]) == 2
    proposer, approver = (User.objects.get(username=u) for u in seeded["channel_admin"])
    channel = Channel.objects.get(code="sandbox")
    change = channel_config_change_propose(channel_id=channel.pk, config={"delay_seconds": 1}, reason="demo",
                                           by=proposer)  # fmt: skip
    applied = channel_config_change_approve(change_id=change.pk, by=approver)
    assert applied.status == ChannelConfigChange.Status.APPLIED
