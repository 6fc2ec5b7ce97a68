# A member of staff works at one or more agencies (issue 7): the foreign key
# becomes a many-to-many, and each staff member keeps the agency they had.

from django.db import migrations, models


def agencies_from_agency(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Through = User.agencies.through
    Through.objects.bulk_create(
        Through(user_id=user_id, agency_id=agency_id)
        for user_id, agency_id in User.objects.filter(agency__isnull=False).values_list("pk", "agency_id")
    )


def agency_from_agencies(apps, schema_editor):
    # Back to one agency: the first of each staff member's.
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(agencies__isnull=False).distinct():
        user.agency = user.agencies.order_by("pk").first()
        user.save(update_fields=["agency"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_subscriber_paperless_contactchannel_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="agencies",
            field=models.ManyToManyField(
                blank=True, related_name="staff", to="accounts.agency", verbose_name="agencies"
            ),
        ),
        migrations.RunPython(agencies_from_agency, agency_from_agencies),
        migrations.RemoveField(model_name="user", name="agency"),
    ]
