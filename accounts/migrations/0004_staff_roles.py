# The staff roles (accounts.roles) as groups on every server, not only in the demo.

from django.db import migrations

from accounts.roles import roles_sync_in_migration



class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_staff_agencies"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("billing", "0006_change_requests_and_reading_corrections"),
        ("notifications", "0003_message_resend_permission"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_sync_in_migration, migrations.RunPython.noop)]
