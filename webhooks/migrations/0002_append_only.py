from django.db import migrations

from config.dbtriggers import append_only


class Migration(migrations.Migration):
    # The outbox and the attempt log are history: UPDATE and DELETE refused by the database. (The operations
    # role's permissions on the delivery log are given by accounts' post_migrate roles_sync.)
    dependencies = [("webhooks", "0001_initial")]
    operations = [append_only("webhooks_webhookevent"), append_only("webhooks_webhookattempt")]
