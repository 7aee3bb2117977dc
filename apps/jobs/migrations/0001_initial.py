"""The Job model moves here from apps.generation. State only: the table (generation_job)
and its rows, indexes and constraint stay exactly as apps.generation's migrations made them."""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('keys', '0001_initial'),
        # The table exists (created by generation 0001/0002) before this state claims it.
        ('generation', '0002_job_enqueued_at'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Job',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('project_id', models.CharField(db_index=True, max_length=100)),
                        ('kind', models.CharField(max_length=16)),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='queued', max_length=16)),
                        ('request', models.JSONField(default=dict)),
                        ('result', models.JSONField(blank=True, null=True)),
                        ('error_code', models.CharField(blank=True, default='', max_length=64)),
                        ('error_message', models.TextField(blank=True, default='')),
                        ('error_details', models.JSONField(blank=True, null=True)),
                        ('retry_after', models.FloatField(blank=True, null=True)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('enqueued_at', models.DateTimeField(blank=True, null=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('idempotency_key', models.CharField(blank=True, max_length=255, null=True)),
                        ('request_hash', models.CharField(blank=True, default='', max_length=64)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='jobs', to='keys.apikey')),
                    ],
                    options={
                        'db_table': 'generation_job',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['status', 'created_at'], name='generation__status_dd70ec_idx')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('api_key', 'idempotency_key'), name='one_job_per_idempotency_key')],
                    },
                ),
            ],
        ),
    ]
