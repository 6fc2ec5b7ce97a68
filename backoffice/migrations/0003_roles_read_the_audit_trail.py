# Supervisors and auditors read the audit trail: sync the roles again once
# auditlog's tables (and so its permissions) exist (accounts.roles).

from django.db import migrations

from accounts.roles import roles_sync_in_migration



class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0002_logentry_scope_indexes"),
        ("accounts", "0004_staff_roles"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(roles_sync_in_migration, migrations.RunPython.noop)]
