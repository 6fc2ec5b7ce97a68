# The staff roles (accounts.roles) as groups on every server, not only in the demo.

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.roles import roles_sync


def roles_create(apps, schema_editor):
    # Permissions are created after all migrations (post_migrate); on a fresh
    # database they do not exist yet here, so create them first.
    for app_config in apps.get_app_configs():  # the migration's stubs, not the live apps
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    roles_sync(
        group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"), strict=False
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_staff_agencies"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("billing", "0006_change_requests_and_reading_corrections"),
        ("notifications", "0003_message_resend_permission"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
