from django.db import migrations


def forwards(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("withdrawals", "0002_events_append_only"),
        ("accounts", "0001_initial"),
        ("wallets", "0002_entries_append_only"),
        ("payment_channels", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
