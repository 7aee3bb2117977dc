"""Job now belongs to apps.jobs (its 0001 takes over the same table). State only: nothing
is dropped from the database."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0002_job_enqueued_at'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name='Job')],
        ),
    ]
