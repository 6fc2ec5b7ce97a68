"""A clerk edits an agency's week, its reduced hours and its roll-out date in the admin."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from accounts.models import Agency, AgencyHours, AgencyHoursReduction

pytestmark = pytest.mark.django_db


def _form(**overrides) -> dict:
    data = {
        "code": "TUN-C",
        "name_ar": "وكالة تونس",
        "name_fr": "Agence Tunis",
        "city": "Tunis",
        "address": "38 rue Kamel Ataturk",
        "phone": "71 123 456",
        "latitude": "36.8008",
        "longitude": "10.1806",
        "paperless_from": "2026-09-01",
        "hours-TOTAL_FORMS": "0",
        "hours-INITIAL_FORMS": "0",
        "hours_reductions-TOTAL_FORMS": "0",
        "hours_reductions-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def _hours(*rows: tuple[int, str, str]) -> dict:
    data = {"hours-TOTAL_FORMS": str(len(rows))}
    for i, (day, opens, closes) in enumerate(rows):
        data |= {f"hours-{i}-weekday": str(day), f"hours-{i}-opens": opens, f"hours-{i}-closes": closes}
    return data


@pytest.fixture
def admin_client_(client: Client, superuser) -> Client:
    client.force_login(superuser)
    return client


ADD = "/en/admin/accounts/agency/add/"


def test_a_clerk_types_the_phone_as_spoken_and_the_week_day_by_day(admin_client_: Client) -> None:
    response = admin_client_.post(
        ADD, _form(**_hours((1, "08:00", "12:00"), (1, "13:30", "17:00"), (6, "08:00", "12:00")))
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    agency = Agency.objects.get(code="TUN-C")
    assert agency.phone == "+21671123456"
    assert agency.paperless_from == dt.date(2026, 9, 1)
    assert [(h.weekday, str(h)) for h in agency.hours.all()] == [
        (1, "Monday 08:00–12:00"),
        (1, "Monday 13:30–17:00"),
        (6, "Saturday 08:00–12:00"),
    ]


def test_a_number_that_is_not_a_phone_is_refused_with_an_example(admin_client_: Client) -> None:
    response = admin_client_.post(ADD, _form(phone="12"))
    assert response.status_code == 200
    assert "for example 71 123 456" in str(response.context["adminform"].form.errors["phone"])
    assert not Agency.objects.exists()


def test_two_openings_of_one_day_may_not_overlap(admin_client_: Client) -> None:
    response = admin_client_.post(ADD, _form(**_hours((2, "08:00", "13:00"), (2, "12:00", "17:00"))))
    assert response.status_code == 200
    assert "Two openings of the same day overlap." in response.content.decode()
    assert not AgencyHours.objects.exists()


def test_an_opening_that_closes_before_it_opens_is_refused_clearly(admin_client_: Client) -> None:
    response = admin_client_.post(ADD, _form(**_hours((2, "17:00", "08:00"))))
    assert "An opening must close after it opens." in response.content.decode()


def test_a_reduction_is_closed_or_has_hours_and_says_so(admin_client_: Client) -> None:
    reduction = {
        "hours_reductions-TOTAL_FORMS": "1",
        "hours_reductions-0-starts_on": "2026-03-10",
        "hours_reductions-0-ends_on": "2026-03-12",
        "hours_reductions-0-closed": "on",
        "hours_reductions-0-opens": "09:00",
        "hours_reductions-0-closes": "13:00",
        "hours_reductions-0-note_fr": "Grève",
    }
    response = admin_client_.post(ADD, _form(**reduction))
    assert "Either tick “closed” and leave the hours empty" in response.content.decode()
    reduction |= {"hours_reductions-0-opens": "", "hours_reductions-0-closes": ""}
    assert admin_client_.post(ADD, _form(**reduction)).status_code == 302
    assert AgencyHoursReduction.objects.get().closed


def test_the_add_page_and_a_change_page_answer(admin_client_: Client) -> None:
    assert admin_client_.get(ADD).status_code == 200
    agency = Agency.objects.create(code="X", name_ar="س", name_fr="X", city="Tunis", address="1 rue")
    assert admin_client_.get(reverse("admin:accounts_agency_change", args=[agency.pk])).status_code == 200


# --- The free-text hours of before, read by the migration -------------------------

# Found by name, whatever number it ends up with among the other accounts migrations.
MIGRATION = next((Path(__file__).parents[1] / "migrations").glob("*_agency_hours_paperless.py")).stem
_migration = importlib.import_module(f"accounts.migrations.{MIGRATION}")
MON_FRI = [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lun–Ven 08:00–17:00, Sam 08:00–12:00", [(d, "08:00", "17:00") for d in MON_FRI] + [(6, "08:00", "12:00")]),
        ("Dim–Jeu 08:00–15:00", [(d, "08:00", "15:00") for d in (1, 2, 3, 4, 7)]),  # wraps the week
        ("Lundi au vendredi 8h-12h et 14h-17h30", sorted([(d, "08:00", "12:00") for d in MON_FRI]
                                                        + [(d, "14:00", "17:30") for d in MON_FRI])),
        ("", []),
    ],
)  # fmt: skip
def test_the_migration_reads_the_usual_spellings(text: str, expected: list) -> None:
    rows = _migration.parse_opening_hours(text)
    assert [(d, f"{o:%H:%M}", f"{c:%H:%M}") for d, o, c in rows] == expected


@pytest.mark.parametrize(
    "text", ["Sur rendez-vous", "08:00-17:00", "Lun-Ven", "Lun 17h-8h", "Lun-Ven 8h-17h, Lun 8h-12h"]
)
def test_the_migration_reads_nothing_rather_than_half_of_a_text(text: str) -> None:
    assert _migration.parse_opening_hours(text) is None


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_the_old_text_into_rows_on_postgresql(capsys) -> None:
    (previous,) = [dep for dep in _migration.Migration.dependencies if dep[0] == "accounts"]
    executor = MigrationExecutor(connection)
    executor.migrate([previous])
    old = executor.loader.project_state([previous]).apps.get_model("accounts", "Agency")
    old.objects.create(code="A", name_ar="أ", name_fr="A", city="Tunis", address="1", opening_hours="Lun-Ven 8h-16h")
    old.objects.create(code="B", name_ar="ب", name_fr="B", city="Tunis", address="2", opening_hours="Sur rendez-vous")
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([("accounts", MIGRATION)])
        new = executor.loader.project_state([("accounts", MIGRATION)]).apps.get_model("accounts", "AgencyHours")
        assert sorted(new.objects.filter(agency__code="A").values_list("weekday", flat=True)) == [1, 2, 3, 4, 5]
        assert not new.objects.filter(agency__code="B").exists()
        # The operator is told which agency's hours to enter again.
        assert "Agency B: enter its opening hours again" in capsys.readouterr().out
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
