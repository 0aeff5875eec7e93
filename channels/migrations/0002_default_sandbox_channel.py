from django.db import migrations


def forwards(apps, schema_editor):
    Channel = apps.get_model("payment_channels", "Channel")
    Channel.objects.get_or_create(
        code="sandbox",
        defaults={
            "name": "沙箱通道",
            "adapter": "sandbox",
            "priority": 900,
            "supported_account_kinds": ["bank_card", "alipay", "wechat"],
            "expected_arrival_seconds": 30,
            "fee_fixed": 0,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("payment_channels", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
