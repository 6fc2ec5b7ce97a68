# Supervisors start their agencies' bill runs: sync the roles (accounts.roles)
# now that the bill run's permissions exist.

from django.db import migrations

from accounts.roles import roles_sync_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_bill_runs_and_taxes"),
        ("accounts", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(roles_sync_in_migration, migrations.RunPython.noop)]
