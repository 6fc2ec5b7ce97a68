"""Indexes on the two keys of the audit trail's `additional_data` that the back
office filters on (a customer's entries, an agency's entries). auditlog's table
is not ours to declare indexes on in a model, so they are created here."""

from __future__ import annotations

from django.db import migrations

INDEXES = {
    "audit_subscriber_idx": "subscriber_id",
    "audit_agency_idx": "agency_id",
}


def create(apps, schema_editor) -> None:
    for name, key in INDEXES.items():
        if schema_editor.connection.vendor == "postgresql":
            expression = f"((additional_data -> '{key}'))"
        else:
            expression = f"(json_extract(additional_data, '$.{key}'))"
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON auditlog_logentry {expression}")


def drop(apps, schema_editor) -> None:
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(create, drop)]
