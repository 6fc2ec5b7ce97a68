"""Receipt numbers from a PostgreSQL SEQUENCE (core.models.sequence_nextval)
instead of the `core_sequence` row, whose lock made every payment wait for the
one before it to commit. It starts after the last number the row gave out, so
no receipt number is given twice. SQLite keeps using the row."""

from django.db import migrations

SEQUENCE = "payment_receipt"


def sequence_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Sequence = apps.get_model("core", "Sequence")
    row = Sequence.objects.filter(name=SEQUENCE).first()
    last = row.last_value if row else 0
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS bigint MINVALUE 1")
        # is_called: the next nextval() returns last + 1 (or 1 on a new database).
        cursor.execute("SELECT setval(%s, %s, %s)", [SEQUENCE, max(last, 1), last > 0])


def sequence_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Back to the row: it must go on after the numbers the sequence gave out.
        cursor.execute(f"SELECT last_value, is_called FROM {SEQUENCE}")
        last, called = cursor.fetchone()
        if called:
            Sequence = apps.get_model("core", "Sequence")
            Sequence.objects.update_or_create(name=SEQUENCE, defaults={"last_value": last})
        cursor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("payments", "0005_roles_counter_and_settlement"),
    ]

    operations = [migrations.RunPython(sequence_create, sequence_drop)]
