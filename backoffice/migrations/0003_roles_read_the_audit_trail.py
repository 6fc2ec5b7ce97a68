# Supervisors and auditors read the audit trail: sync the roles again once
# auditlog's tables (and so its permissions) exist (accounts.roles).

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.roles import roles_sync


def roles_update(apps, schema_editor):
    # Permissions are created after all migrations (post_migrate): create them first.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    roles_sync(
        group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"), strict=False
    )


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0002_logentry_scope_indexes"),
        ("accounts", "0004_staff_roles"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(roles_update, migrations.RunPython.noop)]
