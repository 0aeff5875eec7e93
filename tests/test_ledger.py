from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Merchant
from config.errors import DomainError
from tests.factories import ALICE_CREDIT
from wallets.models import Entry, LedgerAccount, Transfer
from wallets.selectors import ledger_problems, wallet_balances
from wallets.services import (
    Leg,
    ReleaseRun,
    hold_place,
    hold_post,
    hold_void,
    ledger_account_get,
    ledger_transfer_post,
    merchant_sale_settle,
    release_due,
    sale_credit,
    transfer_reverse,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_transfer_must_balance(merchant_alice):
    custody = ledger_account_get(kind="custody")
    pending = ledger_account_get(kind="merchant_pending", merchant_id=merchant_alice.pk)
    with pytest.raises(ValueError, match="does not balance"):
        ledger_transfer_post(kind="adjustment", reference="x", legs=[Leg(custody, 100), Leg(pending, -99)])
    assert not Transfer.objects.filter(reference="x").exists()


def test_entries_refuse_update_and_delete_at_the_database(merchant_alice):
    entry = Entry.objects.first()
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE wallets_entry SET amount = amount + 1 WHERE id = %s", [entry.pk])
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM wallets_entry WHERE id = %s", [entry.pk])


def test_available_cannot_go_negative_even_bypassing_services(merchant_alice):
    account = LedgerAccount.objects.get(kind="merchant_available", merchant=merchant_alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerAccount.objects.filter(pk=account.pk).update(balance=-1)


def test_hold_more_than_available_is_refused_and_moves_nothing(merchant_alice):
    before = wallet_balances(merchant_id=merchant_alice.pk)
    with pytest.raises(DomainError) as exc:
        hold_place(merchant_id=merchant_alice.pk, amount=before.available + 1, reference="too-much")
    assert exc.value.code == "insufficient_funds"
    assert wallet_balances(merchant_id=merchant_alice.pk) == before
    assert not Transfer.objects.filter(reference="too-much").exists()


def test_hold_post_void_and_reverse_keep_the_books_straight(merchant_alice):
    m = merchant_alice.pk
    hold_place(merchant_id=m, amount=10_000, reference="h1")
    hold_post(merchant_id=m, amount=10_000, fee=100, reference="p1", channel_code="sandbox")
    hold_place(merchant_id=m, amount=5_000, reference="h2")
    hold_void(merchant_id=m, amount=5_000, reference="v2")
    b = wallet_balances(merchant_id=m)
    assert (b.available, b.held) == (ALICE_CREDIT - 10_000, 0)
    assert ledger_account_get(kind="platform_fee_revenue").balance == 100
    assert ledger_account_get(kind="channel_clearing", scope="channel:sandbox").balance == 9_900
    transfer_reverse(transfer=Transfer.objects.get(reference="p1"), reference="r1")
    assert wallet_balances(merchant_id=m).held == 10_000  # a return lands in held, then a void releases it
    assert ledger_account_get(kind="platform_fee_revenue").balance == 0
    assert ledger_problems() == []


def test_posting_the_same_reference_twice_posts_once(merchant_alice):
    t1 = hold_place(merchant_id=merchant_alice.pk, amount=1_000, reference="same")
    t2 = hold_place(merchant_id=merchant_alice.pk, amount=1_000, reference="same")
    assert t1.pk == t2.pk
    assert wallet_balances(merchant_id=merchant_alice.pk).held == 1_000


def test_ecommerce_sales_wait_one_day_and_reserve_is_kept(sandbox_channel):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import MerchantFactory

    m = MerchantFactory(credit=0, real_name="刘洋", id_number="310101198001010018")
    Merchant.objects.filter(pk=m.pk).update(category="ecommerce_cards", reserve_required=30_000)
    now = timezone.now()
    merchant_sale_settle(merchant_id=m.pk, order_ref="o1", amount=100_000, now=now)
    b = wallet_balances(merchant_id=m.pk)
    assert (b.pending, b.available) == (100_000, 0)
    assert release_due(now=now + timedelta(hours=23), reserve_for={m.pk: 30_000}) == ReleaseRun(0, 0, 0)
    assert release_due(now=now + timedelta(days=1, seconds=1), reserve_for={m.pk: 30_000}) == ReleaseRun(1, 0, 0)
    b = wallet_balances(merchant_id=m.pk)
    assert (b.pending, b.available, b.reserve) == (0, 70_000, 30_000)
    assert ledger_problems() == []


def test_ledger_check_passes_then_names_a_corrupted_balance(merchant_alice):
    call_command("ledger_check")
    account = LedgerAccount.objects.get(kind="merchant_available", merchant=merchant_alice)
    LedgerAccount.objects.filter(pk=account.pk).update(balance=account.balance + 7)
    with pytest.raises(CommandError, match="invariant"):
        call_command("ledger_check")
    assert any("difference 7" in p for p in ledger_problems())


def test_ledger_check_names_an_unbalanced_transfer(merchant_alice):
    custody = ledger_account_get(kind="custody")
    t = Transfer.objects.create(kind="adjustment", reference="bad")
    Entry.objects.create(transfer=t, account=custody, amount=5)  # written around the service on purpose
    LedgerAccount.objects.filter(pk=custody.pk).update(balance=custody.balance + 5)
    problems = ledger_problems()
    assert any(f"transfer {t.pk}" in p and "off by 5" in p for p in problems)


operations = st.lists(
    st.tuples(st.sampled_from(["credit", "hold", "post", "void"]), st.integers(min_value=1, max_value=50_000)),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_of_operations_keeps_every_invariant(merchant_alice, ops):
    m = merchant_alice.pk
    base_held = wallet_balances(merchant_id=m).held  # examples share the test's database
    run = uuid.uuid4().hex  # fresh references per example (a reused one would be an idempotent replay)
    open_holds: list[tuple[str, int]] = []
    for i, (op, amount) in enumerate(ops):
        ref = f"prop-{run}-{i}"
        try:
            with transaction.atomic():
                if op == "credit":
                    sale_credit(merchant_id=m, order_ref=ref, amount=amount)
                elif op == "hold":
                    hold_place(merchant_id=m, amount=amount, reference=ref)
                    open_holds.append((ref, amount))
                elif open_holds:
                    _ref, held = open_holds.pop()
                    if op == "post":
                        hold_post(
                            merchant_id=m,
                            amount=held,
                            fee=min(100, held - 1),
                            reference=ref,
                            channel_code="sb",
                        )
                    else:
                        hold_void(merchant_id=m, amount=held, reference=ref)
        except DomainError as exc:
            assert exc.code == "insufficient_funds"
        b = wallet_balances(merchant_id=m)
        assert b.available >= 0 and b.held == base_held + sum(a for _r, a in open_holds)
    assert ledger_problems() == []
