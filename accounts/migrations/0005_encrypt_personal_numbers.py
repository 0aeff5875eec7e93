"""Encrypt the personal numbers already stored, fill their keyed hashes, and turn the risk engine's raw
numbers (RiskState keys and rows, high-risk list entries, list hits in withdrawal explanations) into the same
keyed hashes. Rows written by older code are plain text; rows already encrypted are left as they are."""

from django.db import migrations

from config.crypto import is_pii_hash, pii_hash

PURPOSE = {"card": "account", "phone": "phone", "id_number": "id_number"}


def link_key(kind, value):  # type: ignore[no-untyped-def]
    value = str(value or "").strip()
    if not value or is_pii_hash(value):
        return value
    if kind == "id_number":
        value = value.upper()
    return pii_hash(PURPOSE[kind], value)


def encrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    for app, model, fields in (
        ("accounts", "KycRecord", ["id_number", "id_number_hash", "phone", "phone_hash", "four_elements_card"]),
        ("accounts", "HistoricalKycRecord", ["id_number", "id_number_hash", "phone", "phone_hash", "four_elements_card"]),
        ("accounts", "PayoutAccount", ["account_number", "account_number_hash"]),
        ("payment_channels", "SandboxPayout", ["account_number"]),
    ):
        Model = apps.get_model(app, model)
        for obj in Model.objects.all().iterator(chunk_size=500):
            obj.save(update_fields=fields)  # EncryptedTextField encrypts; HashField recomputes


def rekey_risk(apps, schema_editor):  # type: ignore[no-untyped-def]
    RiskState = apps.get_model("risk", "RiskState")
    for kind in PURPOSE:
        for row in RiskState.objects.filter(kind=kind).iterator(chunk_size=500):
            key = link_key(kind, row.key)
            if key == row.key:
                continue
            if RiskState.objects.filter(kind=kind, key=key).exists():
                row.delete()  # already known under its link key
            else:
                RiskState.objects.filter(pk=row.pk).update(key=key)
    for row in RiskState.objects.filter(kind="merchant").iterator(chunk_size=500):
        data, changed = dict(row.data or {}), False
        for field, kind in (("idn", "id_number"), ("phone", "phone")):
            if data.get(field) and not is_pii_hash(str(data[field])):
                data[field], changed = link_key(kind, data[field]), True
        cards = data.get("cards") or {}
        if any(not is_pii_hash(c) for c in cards):
            data["cards"], changed = {link_key("card", c): v for c, v in cards.items()}, True
        for entry in data.get("wd") or []:
            if len(entry) > 2 and entry[2] and not is_pii_hash(str(entry[2])):
                entry[2], changed = link_key("card", entry[2]), True
        if changed:
            RiskState.objects.filter(pk=row.pk).update(data=data)
    for row in RiskState.objects.filter(kind="withdrawal").iterator(chunk_size=500):
        data = dict(row.data or {})
        if data.get("card") and not is_pii_hash(str(data["card"])):
            data["card"] = link_key("card", data["card"])
            RiskState.objects.filter(pk=row.pk).update(data=data)
    for model in ("RiskListEntry", "HistoricalRiskListEntry"):
        Entry = apps.get_model("risk", model)
        for entry in Entry.objects.filter(kind__in=list(PURPOSE)).iterator(chunk_size=500):
            key = link_key(entry.kind, entry.value)
            if key != entry.value:
                Entry.objects.filter(pk=entry.pk).update(value=key)
    Withdrawal = apps.get_model("withdrawals", "Withdrawal")
    for w in Withdrawal.objects.filter(risk_explanation__has_key="list_hits").iterator(chunk_size=500):
        explanation = dict(w.risk_explanation)
        hits = explanation.get("list_hits") or []
        changed = False
        for hit in hits:
            if hit.get("kind") in PURPOSE and hit.get("value") and not is_pii_hash(str(hit["value"])):
                hit["value"], changed = link_key(hit["kind"], hit["value"]), True
        if changed:
            Withdrawal.objects.filter(pk=w.pk).update(risk_explanation=explanation)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_pii_encryption_audit"),
        ("payment_channels", "0005_config_changes_encrypted_sandbox"),
        ("risk", "0004_sms_merchant"),
        ("withdrawals", "0005_payout_lease_and_retry_link"),
    ]

    operations = [
        # Not reversible in place: the columns hold ciphertext from here on (decrypt with config.crypto).
        migrations.RunPython(encrypt_rows, migrations.RunPython.noop),
        migrations.RunPython(rekey_risk, migrations.RunPython.noop),
    ]
