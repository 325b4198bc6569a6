"""Create the database cache table, so the default shared cache works right after `migrate`.

The cache holds what every worker and host must share (replay records, rate limits); with
CACHE_URL pointing at Redis this does nothing.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("smart_auth", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
