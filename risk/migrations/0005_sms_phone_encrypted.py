"""The step-up SMS log's phone: encrypted like every other phone number, with the keyed hash beside it for
lookups (the same purpose as ``KycRecord.phone_hash``). Rows written before are plain text and are encrypted
here (those without a keyed hash yet); rows already encrypted are left as they are, so running it again changes
nothing.

Reversing decrypts the rows back into the plain column (needs the keys that encrypted them)."""

from django.db import migrations

import config.crypto


def encrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    SmsMessage = apps.get_model("risk", "SmsMessage")
    # Rows without a keyed hash were written before this migration, so their phone is plain text.
    for sms in SmsMessage.objects.filter(phone_hash="").iterator(chunk_size=500):
        sms.save(update_fields=["phone", "phone_hash"])  # EncryptedTextField encrypts; HashField fills the hash


def decrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    SmsMessage = apps.get_model("risk", "SmsMessage")
    qn = schema_editor.connection.ops.quote_name
    table, pk_column = qn(SmsMessage._meta.db_table), qn(SmsMessage._meta.pk.column)
    # Raw SQL: the field itself would encrypt the value again on the way in.
    with schema_editor.connection.cursor() as cursor:
        for pk, phone in SmsMessage.objects.values_list("pk", "phone").iterator(chunk_size=500):
            cursor.execute(f"UPDATE {table} SET phone = %s WHERE {pk_column} = %s", [phone or "", pk])


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0004_sms_merchant"),
    ]

    operations = [
        migrations.AddField(
            model_name="smsmessage",
            name="phone_hash",
            field=config.crypto.HashField(db_index=True, purpose="phone", source="phone"),
        ),
        migrations.AlterField(
            model_name="smsmessage",
            name="phone",
            field=config.crypto.EncryptedTextField(),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]

