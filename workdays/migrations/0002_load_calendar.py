from django.db import migrations

from workdays.loader import load


def forwards(apps, schema_editor):
    load(apps.get_model("workdays", "CalendarDay"))


class Migration(migrations.Migration):
    dependencies = [("workdays", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
