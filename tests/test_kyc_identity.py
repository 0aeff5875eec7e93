"""Finding 3: compliance staff could rename a KYC identity in the admin, and a withdrawal to a card in the new
name was accepted. Now the identity is read-only in the admin (change page, merchant inline, history revert);
a change goes through kyc_identity_change, which resets verification and records an audit event."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, KycRecord
from accounts.services import kyc_identity_change, kyc_verify, payout_account_add
from channels.sandbox_rules import make_card_number
from config.errors import DomainError
from tests.factories import MerchantFactory
from tests.staff import staff_client, staff_user
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)

ID_NUMBER, PHONE = "320102198506151236", "13912345678"
NEW_ID = "510104199208084568"


@pytest.fixture
def merchant(sandbox_channel):
    return MerchantFactory(name="Zhang 点卡", real_name="张三", id_number=ID_NUMBER, phone=PHONE, credit=500_000)


def _kyc_form(**values):
    return {"real_name": "李四", "id_number": NEW_ID, "phone": "13700000001", "status": "verified", "level": "2",
            "_save": "Save", **values}  # fmt: skip


def test_renaming_through_the_admin_does_nothing(merchant):
    kyc = merchant.kyc
    for user in (staff_user("comp", "compliance_officer"), staff_user("root", None)):
        client = staff_client(user)
        response = client.post(f"/admin/accounts/kycrecord/{kyc.pk}/change/", _kyc_form())
        assert response.status_code == 403
        # the merchant page's KYC inline is read-only too
        merchant_form = {
            "name": merchant.name, "kind": merchant.kind, "category": merchant.category, "status": merchant.status,
            "external_ref": "", "reserve_required": "0",
            "kyc-TOTAL_FORMS": "1", "kyc-INITIAL_FORMS": "1", "kyc-MIN_NUM_FORMS": "0", "kyc-MAX_NUM_FORMS": "1",
            "kyc-0-id": kyc.pk, "kyc-0-merchant": merchant.pk, "kyc-0-real_name": "李四", "kyc-0-id_number": NEW_ID,
            "kyc-0-phone": "13700000001", "kyc-0-status": "verified", "kyc-0-level": "2",
            "payout_accounts-TOTAL_FORMS": "0", "payout_accounts-INITIAL_FORMS": "0",
            "payout_accounts-MIN_NUM_FORMS": "0", "payout_accounts-MAX_NUM_FORMS": "1000", "_save": "Save",
        }  # fmt: skip
        client.post(f"/admin/accounts/merchant/{merchant.pk}/change/", merchant_form)
        # and no revert from history
        version = kyc.history.order_by("history_id").first()
        assert (
            client.post(f"/admin/accounts/kycrecord/{kyc.pk}/history/{version.history_id}/", _kyc_form()).status_code
            == 403
        )
    kyc.refresh_from_db()
    assert (kyc.real_name, kyc.id_number, kyc.phone, kyc.status) == ("张三", ID_NUMBER, PHONE, "verified")


def test_identity_change_resets_verification_until_reverified(merchant):
    officer = staff_user("comp", "compliance_officer")
    old_card = merchant.payout_accounts.get()
    new_card = payout_account_add(merchant=merchant, account_number=make_card_number(seed=9191), holder_name="李四")

    # The admin's identity page calls the service.
    response = staff_client(officer).post(
        f"/admin/accounts/kycrecord/{merchant.kyc.pk}/identity/",
        {"real_name": "李四", "id_number": NEW_ID, "phone": "", "reason": "户口本更名，附证明"},
    )
    assert response.status_code == 302
    kyc = KycRecord.objects.get(merchant=merchant)
    assert (kyc.real_name, kyc.id_number, kyc.phone) == ("李四", NEW_ID, PHONE)
    assert (kyc.status, kyc.level, kyc.verified_at, kyc.four_elements_card) == ("pending", 0, None, "")
    merchant.refresh_from_db()
    assert merchant.tier is None

    event = AuditEvent.objects.get(action=AuditEvent.Action.KYC_IDENTITY_CHANGED)
    assert event.actor == officer and event.merchant_id == merchant.pk and "户口本" in event.reason
    assert event.detail["changed"]["real_name"] == {"from": "张三", "to": "李四"}
    assert event.detail["changed"]["id_number"] == {"from": "320***********1236", "to": "510***********4568"}
    assert NEW_ID not in str(event.detail) and ID_NUMBER not in str(event.detail)

    # A card in the new name cannot receive money until the identity is verified again ...
    for card in (new_card, old_card):
        with pytest.raises(DomainError) as err:
            withdrawal_submit(merchant_id=merchant.pk, payout_account_id=card.pk, amount=10_000)
        assert err.value.code == "kyc_required"
    kyc_verify(merchant=merchant)
    # ... then it can, and the card in the old name never again.
    assert withdrawal_submit(merchant_id=merchant.pk, payout_account_id=new_card.pk, amount=10_000).created
    with pytest.raises(DomainError) as err:
        withdrawal_submit(merchant_id=merchant.pk, payout_account_id=old_card.pk, amount=10_000)
    assert err.value.code == "card_name_mismatch"


def test_identity_change_needs_the_permission_and_a_reason(merchant):
    for role in ("reviewer", "support", "operations", "privacy_officer"):
        user = staff_user(f"u_{role}", role)
        with pytest.raises(DomainError) as err:
            kyc_identity_change(merchant=merchant, by=user, reason="x", real_name="李四")
        assert err.value.code == "permission_denied"
        assert staff_client(user).get(f"/admin/accounts/kycrecord/{merchant.kyc.pk}/identity/").status_code in (
            302,
            403,
        )
    officer = staff_user("comp", "compliance_officer")
    with pytest.raises(DomainError) as err:
        kyc_identity_change(merchant=merchant, by=officer, reason=" ", real_name="李四")
    assert err.value.code == "invalid_request"
    with pytest.raises(DomainError) as err:
        kyc_identity_change(merchant=merchant, by=officer, reason="typo", id_number="110101199003074478")
    assert err.value.code == "invalid_id_number"
    assert KycRecord.objects.get(merchant=merchant).status == "verified"
