# The paid SMS alert service is billing's (it adds fee lines to bills): the model
# moves here from notifications. The table is kept as it is in this step and
# renamed in 0004, once notifications has let go of the model.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_printrequest'),
        ('notifications', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='SmsAlertSubscription',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('started_on', models.DateField(verbose_name='started on')),
                        ('ended_on', models.DateField(blank=True, null=True, verbose_name='ended on')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sms_alert_subscriptions', to='billing.serviceaccount', verbose_name='account')),
                    ],
                    options={
                        'verbose_name': 'SMS alert subscription',
                        'verbose_name_plural': 'SMS alert subscriptions',
                        'db_table': 'notifications_smsalertsubscription',
                        'constraints': [
                            models.UniqueConstraint(condition=models.Q(('ended_on__isnull', True)), fields=('account',), name='smsalert_one_open_per_account'),
                            models.CheckConstraint(condition=models.Q(('ended_on__isnull', True), ('ended_on__gte', models.F('started_on')), _connector='OR'), name='smsalert_ends_after_start'),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
