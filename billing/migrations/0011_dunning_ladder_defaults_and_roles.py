# The overdue ladder's default days (editable by superusers in the back office),
# and the roles synced again now that the ladder, order, exemption and
# appointment permissions exist (accounts.roles).

from django.db import migrations

from accounts.roles import roles_sync_in_migration

DEFAULTS = {
    "reminder": -3,
    "overdue_notice": 1,
    "disconnection_warning": 15,
    "disconnection_order": 30,
    "reconnection_order": 0,
}


def ladder_seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    step = apps.get_model("billing", "DunningLadderStep")
    for kind, days in DEFAULTS.items():
        step.objects.get_or_create(kind=kind, defaults={"days_after_due": days})


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_dunning_and_appointments"),
        ("accounts", "0004_staff_roles"),
    ]

    operations = [
        migrations.RunPython(ladder_seed, migrations.RunPython.noop),
        migrations.RunPython(roles_sync_in_migration, migrations.RunPython.noop),
    ]
