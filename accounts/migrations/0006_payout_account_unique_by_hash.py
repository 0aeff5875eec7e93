from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_encrypt_personal_numbers")]

    operations = [
        migrations.AddConstraint(
            model_name="payoutaccount",
            constraint=models.UniqueConstraint(
                fields=("merchant", "kind", "account_number_hash"), name="uniq_payout_account_per_merchant"
            ),
        ),
    ]
