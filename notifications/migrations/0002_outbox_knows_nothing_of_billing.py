# The outbox no longer points at billing: a message keeps the account number it
# was about as a plain reference, events are names declared by their owning app,
# and the SMS alert subscription belongs to billing (billing 0003/0004).

from django.db import migrations, models


def copy_account_numbers(apps, schema_editor):
    Message = apps.get_model("notifications", "Message")
    ServiceAccount = apps.get_model("billing", "ServiceAccount")
    numbers = dict(ServiceAccount.objects.values_list("pk", "number"))
    for account_id in Message.objects.exclude(account=None).values_list("account_id", flat=True).distinct():
        Message.objects.filter(account_id=account_id).update(reference=numbers.get(account_id, ""))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_smsalertsubscription_from_notifications'),
        ('notifications', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='SmsAlertSubscription')],
            database_operations=[],
        ),
        migrations.AddField(
            model_name='message',
            name='reference',
            field=models.CharField(blank=True, db_index=True, max_length=64, verbose_name='reference'),
        ),
        migrations.RunPython(copy_account_numbers, migrations.RunPython.noop),
        migrations.RemoveField(model_name='message', name='account'),
        migrations.AlterField(
            model_name='message',
            name='event',
            field=models.CharField(max_length=32, verbose_name='event'),
        ),
    ]
