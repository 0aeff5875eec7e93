"""Finding 5: personal data in plain text. ID, phone and account numbers are now AES-GCM ciphertext at rest
(history tables included), found by keyed hash, linked by the risk engine under the same keyed hash, masked on
every page, admin list, API answer, export and log line, and revealed in full only through an audited admin page.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import subprocess
import sys

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts.models import AuditEvent, KycRecord, PayoutAccount
from accounts.services import api_key_create, payout_account_add, payout_account_find, phone_change
from config import crypto
from config.pii import mask_account, mask_card, mask_id_number, mask_phone, mask_text
from risk.models import RiskListEntry, RiskState, SmsMessage
from risk.selectors import risk_linked_accounts
from risk.services import risk_list_add
from tests.factories import MerchantFactory
from tests.staff import staff_client, staff_user
from withdrawals.models import Withdrawal

pytestmark = pytest.mark.django_db(transaction=True)

ID_A, PHONE_A = "320102198506151236", "13912345678"
ID_B, PHONE_B = "510104199208084568", "13787654321"


def _raw(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def keys_reset():
    crypto.keyring_reset()
    yield
    crypto.keyring_reset()


@pytest.fixture
def zhang(sandbox_channel):
    return MerchantFactory(name="Zhang 点卡", real_name="张三", id_number=ID_A, phone=PHONE_A, credit=2_000_000)


def _card(merchant) -> str:
    return merchant.payout_accounts.order_by("pk").first().account_number


# --- masking ---------------------------------------------------------------------------------------------
def test_mask_formats() -> None:
    assert mask_card("6222021234561234") == "6222 **** **** 1234"
    assert mask_id_number("310101198001010018") == "310***********0018"
    assert mask_phone("13856785678") == "138****5678"
    assert mask_account("zhang@example.com", "alipay") == "z***@example.com"
    assert mask_account("13856785678", "alipay") == "138****5678"
    text = "card 6222 0212 3456 1234, id 11010519491231002X, phone 13856785678, order WD20261129A1B2C3D4E5F6, 5000000"
    masked = mask_text(text)
    assert "6222 **** **** 1234" in masked and "110***********002X" in masked and "138****5678" in masked
    assert "WD20261129A1B2C3D4E5F6" in masked and "5000000" in masked


# --- at rest ---------------------------------------------------------------------------------------------
def test_numbers_are_ciphertext_in_tables_and_history(zhang):
    card = _card(zhang)
    kyc_rows = _raw("SELECT id_number, phone, four_elements_card, id_number_hash FROM accounts_kycrecord")
    history = _raw("SELECT id_number, phone, four_elements_card FROM accounts_historicalkycrecord")
    accounts = _raw("SELECT account_number, account_number_hash FROM accounts_payoutaccount")
    assert len(history) >= 2  # registration, verification, four elements
    for value in [v for row in kyc_rows + history for v in row[:3]] + [row[0] for row in accounts]:
        assert value == "" or crypto.is_ciphertext(value), value
    assert kyc_rows[0][3] == crypto.pii_hash("id_number", ID_A)
    assert accounts[0][1] == crypto.pii_hash("account", card)
    kyc = KycRecord.objects.get(merchant=zhang)
    assert (kyc.id_number, kyc.phone, kyc.four_elements_card) == (ID_A, PHONE_A, card)  # read back in clear


def test_lookup_and_uniqueness_by_keyed_hash(zhang):
    card = _card(zhang)
    again = payout_account_add(merchant=zhang, account_number=card, holder_name="张三")
    assert PayoutAccount.objects.filter(merchant=zhang).count() == 1 and again.account_number == card
    assert payout_account_find(merchant=zhang, account_number=card) == again
    with pytest.raises(FieldError):  # a ciphertext never equals anything: lookups must use the hash column
        list(PayoutAccount.objects.filter(account_number=card))
    phone_change(merchant=zhang, phone=PHONE_B)
    kyc = KycRecord.objects.get(merchant=zhang)
    assert kyc.phone == PHONE_B and kyc.phone_hash == crypto.pii_hash("phone", PHONE_B)


def test_risk_links_by_keyed_hash_never_by_number(sandbox_channel):
    a = MerchantFactory(name="A", real_name="张三", id_number=ID_A, phone=PHONE_A)
    b = MerchantFactory(name="B", real_name="王五", id_number=ID_B, phone=PHONE_A)  # shares the phone
    risk_list_add(kind="card", value=_card(a), reason="test")
    keys = _raw("SELECT kind, key, data::text FROM risk_riskstate")
    for kind, key, data in keys:
        for number in (ID_A, ID_B, PHONE_A, _card(a), _card(b)):
            assert number not in key and number not in data, (kind, key)
        if kind in ("card", "phone", "id_number"):
            assert crypto.is_pii_hash(key)
    assert RiskState.objects.filter(kind="phone", key=crypto.pii_hash("phone", PHONE_A)).exists()
    linked = risk_linked_accounts(merchant_subject=a.risk_subject)
    assert [item["merchant"] for item in linked] == [b.risk_subject]
    assert linked[0]["via"] == [{"kind": "phone", "value": crypto.pii_hash("phone", PHONE_A)}]
    assert RiskListEntry.objects.get().value == crypto.pii_hash("account", _card(a))


# --- keys --------------------------------------------------------------------------------------------------
def test_key_rotation_reencrypts_with_the_newest_key(zhang, settings, keys_reset):
    card = _card(zhang)
    old_id = crypto.keyring().current_id
    SmsMessage.objects.create(merchant_id=zhang.pk, phone=PHONE_A, text="code ******", backend="memory")
    new_key = crypto.generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, crypto.DEV_ENCRYPTION_KEY]
    settings.FIELD_HASH_KEY = crypto.DEV_HASH_KEY
    crypto.keyring_reset()
    new_id = crypto.keyring().current_id
    assert new_id != old_id
    assert KycRecord.objects.get(merchant=zhang).id_number == ID_A  # the old key still decrypts
    call_command("pii_rotate_keys")
    for table, column in (("accounts_kycrecord", "id_number"), ("accounts_historicalkycrecord", "phone"),
                          ("accounts_payoutaccount", "account_number"), ("risk_smsmessage", "phone")):  # fmt: skip
        values = [v for (v,) in _raw(f"SELECT {column} FROM {table}") if v]
        assert values and all(crypto.ciphertext_key_id(v) == new_id for v in values), table
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can go
    crypto.keyring_reset()
    assert KycRecord.objects.get(merchant=zhang).id_number == ID_A
    assert payout_account_find(merchant=zhang, account_number=card) is not None
    assert SmsMessage.objects.get().phone == PHONE_A


def test_production_refuses_to_start_without_keys(settings, keys_reset):
    from accounts.apps import check_field_keys

    settings.FIELD_ENCRYPTION_KEYS, settings.FIELD_HASH_KEY, settings.FIELD_ENCRYPTION_DEV_KEYS = [], "", False
    crypto.keyring_reset()
    with pytest.raises(ImproperlyConfigured):
        crypto.keyring()
    assert [e.id for e in check_field_keys(None)] == ["accounts.E001"]
    env = {"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 30 + "abcdefghijklmnopqrstu"}
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "FIELD_ENCRYPTION_KEYS" in proc.stderr


# --- the data migration ------------------------------------------------------------------------------------
def test_data_migration_encrypts_plain_rows_and_rekeys_risk(zhang):
    from django.apps import apps

    card = _card(zhang)
    kyc = KycRecord.objects.get(merchant=zhang)
    # Rows as the code before this change wrote them.
    _raw("UPDATE accounts_kycrecord SET id_number = %s, phone = %s, id_number_hash = '', phone_hash = ''",
         [ID_A, PHONE_A])  # fmt: skip
    _raw("UPDATE accounts_historicalkycrecord SET id_number = %s", [ID_A])
    _raw("UPDATE accounts_payoutaccount SET account_number = %s, account_number_hash = ''", [card])
    _raw("DELETE FROM risk_riskstate WHERE kind IN ('card', 'phone', 'id_number')")
    _raw("INSERT INTO risk_riskstate (kind, key, data, updated_at) VALUES ('card', %s, %s, now())",
         [card, json.dumps({"m": [zhang.risk_subject]})])  # fmt: skip
    merchant_row = RiskState.objects.get(kind="merchant", key=zhang.risk_subject)
    merchant_row.data.update(idn=ID_A, phone=PHONE_A, cards={card: {"ts": 1}}, wd=[[1, 100, card, 0, 0]])
    merchant_row.save()
    RiskListEntry.objects.create(kind="phone", value=PHONE_A, reason="old")

    migration = importlib.import_module("accounts.migrations.0005_encrypt_personal_numbers")
    migration.encrypt_rows(apps, None)
    migration.rekey_risk(apps, None)

    ((id_cipher, phone_cipher, id_hash),) = _raw("SELECT id_number, phone, id_number_hash FROM accounts_kycrecord")
    assert crypto.is_ciphertext(id_cipher) and crypto.is_ciphertext(phone_cipher)
    assert id_hash == crypto.pii_hash("id_number", ID_A)
    assert all(crypto.is_ciphertext(v) for (v,) in _raw("SELECT id_number FROM accounts_historicalkycrecord"))
    assert _raw("SELECT account_number_hash FROM accounts_payoutaccount") == [(crypto.pii_hash("account", card),)]
    kyc.refresh_from_db()
    assert kyc.id_number == ID_A
    dump = json.dumps(list(RiskState.objects.values_list("kind", "key", "data")))
    assert card not in dump and ID_A not in dump and PHONE_A not in dump
    assert RiskState.objects.filter(kind="card", key=crypto.pii_hash("account", card)).exists()
    assert RiskListEntry.objects.get().value == crypto.pii_hash("phone", PHONE_A)


def test_sms_log_phone_is_ciphertext_found_by_keyed_hash(zhang, django_capture_on_commit_callbacks):
    from risk.stepup import stepup_issue

    with django_capture_on_commit_callbacks(execute=True):
        stepup_issue(subject="withdrawal:1", merchant_id=zhang.pk, phone=PHONE_A)
    ((phone, phone_hash),) = _raw("SELECT phone, phone_hash FROM risk_smsmessage")
    assert crypto.is_ciphertext(phone) and phone_hash == crypto.pii_hash("phone", PHONE_A)
    assert phone_hash == KycRecord.objects.get(merchant=zhang).phone_hash  # one keyed hash per phone, joinable
    sms = SmsMessage.objects.get(phone_hash=crypto.pii_hash("phone", PHONE_A))
    assert sms.phone == PHONE_A and PHONE_A not in str(sms) and mask_phone(PHONE_A) in str(sms)
    with pytest.raises(FieldError):
        list(SmsMessage.objects.filter(phone=PHONE_A))


def test_sms_log_migration_encrypts_plain_rows_and_reverses(zhang):
    from django.apps import apps

    # A row as the code before this change wrote it, and one written since.
    _raw("INSERT INTO risk_smsmessage (merchant_id, phone, phone_hash, text, backend, created_at) "
         "VALUES (%s, %s, '', 'old', 'dev', now())", [zhang.pk, PHONE_A])  # fmt: skip
    SmsMessage.objects.create(merchant_id=zhang.pk, phone=PHONE_B, text="new", backend="memory")
    ((already,),) = _raw("SELECT phone FROM risk_smsmessage WHERE text = 'new'")
    migration = importlib.import_module("risk.migrations.0005_sms_phone_encrypted")
    schema_editor = connection.schema_editor()
    migration.encrypt_rows(apps, schema_editor)
    migration.encrypt_rows(apps, schema_editor)  # again: nothing changes
    rows = dict(_raw("SELECT text, phone FROM risk_smsmessage"))
    assert crypto.is_ciphertext(rows["old"]) and rows["new"] == already  # encrypted rows are left as they are
    assert _raw("SELECT phone_hash FROM risk_smsmessage WHERE text = 'old'") == [(crypto.pii_hash("phone", PHONE_A),)]
    migration.decrypt_rows(apps, schema_editor)
    assert dict(_raw("SELECT text, phone FROM risk_smsmessage")) == {"old": PHONE_A, "new": PHONE_B}


# --- who sees what ---------------------------------------------------------------------------------------
def test_admin_pages_and_lists_show_masked_numbers(zhang):
    from withdrawals.services import withdrawal_submit

    card = _card(zhang)
    account = zhang.payout_accounts.get()
    w = withdrawal_submit(merchant_id=zhang.pk, payout_account_id=account.pk, amount=10_000).withdrawal
    kyc = zhang.kyc
    sms = SmsMessage.objects.create(merchant_id=zhang.pk, phone=PHONE_A, text="code ******", backend="memory")
    li = MerchantFactory(name="Li 点卡", real_name="李四", id_number=ID_B, phone=PHONE_A)
    payout_account_add(merchant=li, account_number=card, holder_name="李四")  # the same card: linked accounts
    pages = [
        "/admin/accounts/kycrecord/",
        f"/admin/accounts/kycrecord/{kyc.pk}/change/",
        f"/admin/accounts/kycrecord/{kyc.pk}/history/",
        "/admin/accounts/payoutaccount/",
        f"/admin/accounts/payoutaccount/{account.pk}/change/",
        f"/admin/accounts/merchant/{zhang.pk}/change/",
        "/admin/withdrawals/withdrawal/",
        f"/admin/withdrawals/withdrawal/{w.pk}/change/",
        "/admin/payment_channels/sandboxpayout/",
        "/admin/risk/smsmessage/",
        f"/admin/risk/smsmessage/{sms.pk}/change/",
        f"/admin/risk/smsmessage/{sms.pk}/delete/",
    ]
    phone_change(merchant=zhang, phone=PHONE_B)  # a change in the KYC history
    for role in (None, "reviewer", "senior_reviewer", "support", "operations", "compliance_officer", "privacy_officer"):
        client = staff_client(staff_user(f"u_{role}", role))
        for url in pages:
            response = client.get(url)
            html = response.content.decode()
            for number in (ID_A, ID_B, PHONE_A, PHONE_B, card):
                assert number not in html, (role, url)
        if role in (None, "reviewer", "operations"):  # the linked-accounts panel is there, by keyed hash only
            html = client.get(f"/admin/withdrawals/withdrawal/{w.pk}/change/").content.decode()
            assert "Li 点卡" in html and f"#{crypto.pii_hash('account', card)[:8]}" in html, role
        if role in (None, "reviewer", "compliance_officer", "privacy_officer"):
            html = client.get(f"/admin/accounts/kycrecord/{kyc.pk}/change/").content.decode()
            assert "320***********1236" in html and "137****4321" in html
    # a full number typed in the search box finds its rows (by keyed hash)
    root = staff_client(staff_user("root2", None))
    assert (
        f"/admin/withdrawals/withdrawal/{w.pk}/change/"
        in root.get(f"/admin/withdrawals/withdrawal/?q={card}").content.decode()
    )
    assert (
        f"/admin/accounts/kycrecord/{kyc.pk}/change/"
        in root.get(f"/admin/accounts/kycrecord/?q={ID_A}").content.decode()
    )
    sms_list = root.get(f"/admin/risk/smsmessage/?q={PHONE_A}").content.decode()
    assert f"/admin/risk/smsmessage/{sms.pk}/change/" in sms_list and mask_phone(PHONE_A) in sms_list
    other_phone = root.get(f"/admin/risk/smsmessage/?q={PHONE_B}").content.decode()
    assert f"/admin/risk/smsmessage/{sms.pk}/change/" not in other_phone
    risk_list_add(kind="card", value=card, reason="test")
    entry = RiskListEntry.objects.get()
    assert (
        f"/admin/risk/risklistentry/{entry.pk}/change/"
        in root.get(f"/admin/risk/risklistentry/?q={card}").content.decode()
    )


def test_reveal_is_for_the_privacy_role_and_audited(zhang):
    kyc, account = zhang.kyc, zhang.payout_accounts.get()
    for role in ("reviewer", "support", "compliance_officer", "operations"):
        client = staff_client(staff_user(f"u_{role}", role))
        response = client.post(f"/admin/accounts/kycrecord/{kyc.pk}/reveal/", {"reason": "curious"})
        assert response.status_code == 403 and ID_A not in response.content.decode()
    officer = staff_user("dpo", "privacy_officer")
    client = staff_client(officer)
    page = client.get(f"/admin/accounts/kycrecord/{kyc.pk}/change/").content.decode()
    assert f"/admin/accounts/kycrecord/{kyc.pk}/reveal/" in page  # the reveal button
    form = client.get(f"/admin/accounts/kycrecord/{kyc.pk}/reveal/")
    assert form.status_code == 200 and ID_A not in form.content.decode()
    assert not AuditEvent.objects.exists()  # looking at the form reveals nothing
    response = client.post(f"/admin/accounts/kycrecord/{kyc.pk}/reveal/", {"reason": "police request 2026-118"})
    html = response.content.decode()
    assert ID_A in html and PHONE_A in html and "no-store" in response["Cache-Control"]
    response = client.post(f"/admin/accounts/payoutaccount/{account.pk}/reveal/", {"reason": "bank dispute"})
    assert account.account_number in response.content.decode()
    events = list(
        AuditEvent.objects.order_by("created_at", "id").values_list("action", "actor", "target_type", "reason")
    )
    assert events == [
        ("pii_revealed", officer.pk, "accounts.kycrecord", "police request 2026-118"),
        ("pii_revealed", officer.pk, "accounts.payoutaccount", "bank dispute"),
    ]
    assert client.post(f"/admin/accounts/kycrecord/{kyc.pk}/reveal/", {"reason": ""}).status_code == 200
    assert AuditEvent.objects.count() == 2  # no reason, no reveal


def test_merchant_pages_and_api_show_masked_numbers(zhang):
    from django.contrib.auth.models import Group

    from accounts.models import User

    card = _card(zhang)
    user = User.objects.create_user(username="zhang", password="pass-1234", merchant=zhang)
    user.groups.add(*Group.objects.filter(name="merchant"))
    web = Client()
    web.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    html = web.get("/accounts/").content.decode()
    assert mask_card(card) in html and card not in html
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=zhang)}")
    account = zhang.payout_accounts.get()
    created = api.post(
        "/api/v1/withdrawals",
        {"amount": 10_000, "payout_account": account.pk, "speed": "standard"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="pii-1",
    )
    assert created.status_code == 201
    body = created.content.decode() + api.get(f"/api/v1/withdrawals/{created.json()['id']}").content.decode()
    body += api.get("/api/v1/withdrawals").content.decode()
    for number in (card, ID_A, PHONE_A):
        assert number not in body


# --- the database dump and the logs --------------------------------------------------------------------------
def _text_columns() -> list[tuple[str, str]]:
    return _raw(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'character') ORDER BY 1, 2"
    )


def test_no_plain_number_in_any_column_or_log_line(sandbox_channel, caplog, monkeypatch, settings):
    """The demo's seed, then merchants, KYC, cards, withdrawals (paid, reviewed, stepped up), risk state and lists,
    SMS log, compliance reports; then every text column of every table and every captured log line: no full ID,
    phone or card number the platform holds."""
    import io

    import withdrawals.services as services
    from compliance.services import report_draft
    from withdrawals.services import withdrawal_approve, withdrawal_submit

    caplog.set_level(logging.DEBUG)
    settings.DEMO_MODE = True  # seed_demo runs only in demo mode
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEMO_MODE = False
    real_assess = services.risk_assess_withdrawal
    outcomes = iter(["allow", "review", "step_up", "allow"])

    def assess(*, event):
        decision = real_assess(event=event)  # the real engine learns (state, decision log) ...
        return dataclasses.replace(decision, outcome=next(outcomes, "allow"))  # ... the test picks the path

    monkeypatch.setattr(services, "risk_assess_withdrawal", assess)
    a = MerchantFactory(name="A", real_name="张三", id_number=ID_A, phone=PHONE_A, credit=5_000_000)
    b = MerchantFactory(name="B", real_name="王五", id_number=ID_B, phone=PHONE_B, credit=5_000_000)
    alipay = payout_account_add(merchant=b, kind="alipay", account_number=PHONE_B, holder_name="王五")
    phone_change(merchant=a, phone="13811112222")
    risk_list_add(kind="id_number", value=ID_B, reason="test")
    numbers = {ID_A, ID_B, PHONE_A, PHONE_B, "13811112222", _card(a), _card(b)}
    reviewer = staff_user("rev", "reviewer")
    made = []
    for merchant, account in ((a, a.payout_accounts.get()), (a, a.payout_accounts.get()), (b, alipay), (b, None)):
        account = account or b.payout_accounts.filter(kind="bank_card").get()
        made.append(withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=20_000).withdrawal)
    withdrawal_approve(withdrawal_id=made[1].pk, reviewer=reviewer)
    w = Withdrawal.objects.get(pk=made[0].pk)
    report_draft(kind="suspicious", subject_ref=f"w{w.pk}", merchant_id=a.pk, merchant_name=a.name, amount=w.amount,
                 occurred_at=w.created_at, grounds=["test"], holder_name="张三", id_number=ID_A,
                 account_number=_card(a))  # fmt: skip
    # the admin pages staff look at are part of the run too
    root = staff_client(staff_user("root", None))
    for url in (f"/admin/withdrawals/withdrawal/{w.pk}/change/", f"/admin/accounts/kycrecord/{a.kyc.pk}/history/"):
        assert root.get(url).status_code == 200
    logging.getLogger("tests.pii").warning("card %s phone %s id %s", _card(a), PHONE_A, ID_A)  # masked too

    # Every number the platform holds (read back decrypted), the demo merchants' included.
    for kyc in KycRecord.objects.all():
        numbers |= {kyc.id_number, kyc.phone, kyc.four_elements_card} - {""}
    numbers |= {account.account_number for account in PayoutAccount.objects.all()}
    assert len(numbers) > 20
    patterns = [f"%{number}%" for number in sorted(numbers)]
    found = []
    for table, column in _text_columns():
        if not _raw(f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE ANY(%s) LIMIT 1', [patterns]):
            continue
        for number in numbers:
            hits = _raw(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{number}%"])[0][0]
            if hits:
                found.append((table, column, number[:3] + "…"))
    assert SmsMessage.objects.filter(phone_hash=crypto.pii_hash("phone", PHONE_B)).exists()  # the step-up's SMS
    assert found == []
    log_text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "6222" in log_text or "****" in log_text
    for number in numbers:
        assert number not in log_text
