# Clerks see plan changes and supervisors approve them (accounts.roles): sync the
# roles again now that the plan-change permissions exist.

from django.db import migrations

from accounts.roles import roles_sync_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_plan_changes"),
        ("accounts", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(roles_sync_in_migration, migrations.RunPython.noop)]
