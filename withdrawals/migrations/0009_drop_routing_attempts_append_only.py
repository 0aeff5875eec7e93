from django.db import migrations

from config.dbtriggers import append_only


class Migration(migrations.Migration):
    dependencies = [("withdrawals", "0008_routing_to_attempts")]
    operations = [
        migrations.RemoveField(model_name="withdrawal", name="routing"),
        append_only("withdrawals_payoutattempt"),
        append_only("withdrawals_payoutanswer"),
    ]
