# Clerks record counter payments, supervisors reverse them and import their
# agency counter's settlement files: sync the roles (accounts.roles) now that
# these permissions exist.

from django.db import migrations

from accounts.roles import roles_sync_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_counter_payments_settlement"),
        ("accounts", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(roles_sync_in_migration, migrations.RunPython.noop)]
