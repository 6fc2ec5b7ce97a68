# An account's kind is its plan's kind, held by PostgreSQL: a composite foreign
# key (plan_id, kind) -> plan (id, kind). A plan's kind cannot change while
# accounts use it, and no writer (admin, bulk import, raw SQL) can pair an
# electricity account with a mobile plan. SQLite (the demo) relies on
# account_open and ServiceAccount.clean(), the only ways the app writes one.

from django.db import migrations, models

FK = "serviceaccount_plan_kind_fk"


def add_fk(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE billing_serviceaccount ADD CONSTRAINT {FK} FOREIGN KEY (plan_id, kind) "
        "REFERENCES billing_plan (id, kind)"
    )


def drop_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE billing_serviceaccount DROP CONSTRAINT IF EXISTS {FK}")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_smsalertsubscription_from_notifications'),
        ('notifications', '0002_outbox_knows_nothing_of_billing'),
    ]

    operations = [
        migrations.AlterModelTable(name='smsalertsubscription', table=None),
        migrations.AddConstraint(
            model_name='plan',
            constraint=models.UniqueConstraint(fields=('id', 'kind'), name='plan_id_kind_unique'),
        ),
        migrations.RunPython(add_fk, drop_fk),
    ]
