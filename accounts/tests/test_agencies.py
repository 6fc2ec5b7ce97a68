"""The public "Our agencies" page: what a passer-by with a cheap phone sees."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Agency, AgencyHours, AgencyHoursReduction

from .factories import AgencyFactory

pytestmark = pytest.mark.django_db

URL = "/{}/agencies/"


@pytest.fixture
def tunis() -> Agency:
    agency = AgencyFactory(
        code="TUN-C",
        name_fr="Agence Tunis Centre",
        name_ar="وكالة تونس المركز",
        city="Tunis",
        address="38 rue Kamel Ataturk, 1001 Tunis",
        phone="+21671123456",
        latitude=Decimal("36.800800"),
        longitude=Decimal("10.180600"),
    )
    for day in range(1, 6):  # Monday to Friday, with a lunch break
        AgencyHours.objects.create(agency=agency, weekday=day, opens=dt.time(8), closes=dt.time(12))
        AgencyHours.objects.create(agency=agency, weekday=day, opens=dt.time(13, 30), closes=dt.time(17))
    AgencyHours.objects.create(agency=agency, weekday=6, opens=dt.time(8), closes=dt.time(12))
    return agency


def _card(html: str, code: str) -> str:
    match = re.search(rf'<article class="card agency" id="agency-{code}">(.*?)</article>', html, re.S)
    assert match, f"no card for {code}"
    return match.group(1)


def _at(monkeypatch: pytest.MonkeyPatch, utc: str) -> None:
    """Stop the clock at an instant given in UTC."""
    instant = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    monkeypatch.setattr(timezone, "now", lambda: instant)


def test_anybody_sees_the_agencies_without_logging_in(client: Client, tunis: Agency) -> None:
    response = client.get(URL.format("fr"))
    assert response.status_code == 200
    card = _card(response.content.decode(), "TUN-C")
    assert "Agence Tunis Centre" in card
    assert "38 rue Kamel Ataturk, 1001 Tunis" in card


def test_the_page_speaks_arabic_right_to_left_and_names_the_agency_in_arabic(client: Client, tunis: Agency) -> None:
    html = client.get(URL.format("ar")).content.decode()
    assert '<html lang="ar" dir="rtl">' in html
    card = _card(html, "TUN-C")
    assert "وكالة تونس المركز" in card and "Agence Tunis Centre" not in card
    assert "الاثنين" in card  # Monday, as CLDR writes it in Arabic


def test_english_readers_get_the_french_name_and_english_days(client: Client, tunis: Agency) -> None:
    card = _card(client.get(URL.format("en")).content.decode(), "TUN-C")
    assert "Agence Tunis Centre" in card and "Monday" in card and "Closed all day" in card


def test_the_week_shows_each_day_its_openings_and_the_closed_days(client: Client, tunis: Agency) -> None:
    card = _card(client.get(URL.format("fr")).content.decode(), "TUN-C")
    rows = dict(re.findall(r'<th scope="row">(\w+)</th>\s*<td>(.*?)</td>', card, re.S))
    text = {day: re.sub(r"<[^>]+>", "", value) for day, value in rows.items()}
    assert text["Lundi"] == "08:00–12:00, 13:30–17:00"
    assert text["Samedi"] == "08:00–12:00"
    assert text["Dimanche"] == "Fermé"
    assert list(text) == ["Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi", "Samedi", "Dimanche"]


def test_today_is_marked_in_the_operator_time_zone(client: Client, tunis: Agency, monkeypatch) -> None:
    # Sunday 23:30 UTC is already Monday 00:30 in Tunis.
    _at(monkeypatch, "2026-03-08T23:30:00")
    card = _card(client.get(URL.format("fr")).content.decode(), "TUN-C")
    assert re.search(r'<tr class="today" aria-current="date">\s*<th scope="row">Lundi</th>', card)


def test_the_phone_is_a_tel_link_spelt_as_in_the_country_and_never_broken(client: Client, tunis: Agency) -> None:
    card = _card(client.get(URL.format("ar")).content.decode(), "TUN-C")
    link = re.search(r'<a class="tel" href="tel:\+21671123456">(.*?)</a>', card, re.S)
    assert link
    # National spelling, no-break spaces only, isolated left to right inside the Arabic page.
    assert '<bdi class="number">71\u00a0123\u00a0456</bdi>' in link.group(1)


def test_a_phone_of_another_country_keeps_its_country_code(client: Client) -> None:
    AgencyFactory(code="NKC", phone="+22245251234")
    card = _card(client.get(URL.format("fr")).content.decode(), "NKC")
    assert 'href="tel:+22245251234"' in card and "+222\u00a045\u00a025\u00a012\u00a034" in card


def test_the_map_links_open_the_phone_map_app_or_openstreetmap_without_any_script(
    client: Client, tunis: Agency
) -> None:
    html = client.get(URL.format("fr")).content.decode()
    card = unescape(_card(html, "TUN-C"))
    assert 'href="geo:36.8008,10.1806?q=36.8008,10.1806(Agence%20Tunis%20Centre%2C%20Tunis)"' in card
    assert 'href="https://www.openstreetmap.org/?mlat=36.8008&mlon=10.1806#map=17/36.8008/10.1806"' in card
    # No embedded map, no third-party or inline script or style (a strict CSP must not break the page).
    assert "<script" not in html and "<iframe" not in html and "style=" not in html


def test_an_agency_without_coordinates_is_looked_up_by_its_address(client: Client) -> None:
    AgencyFactory(code="NOGEO", address="1 rue de Rome", city="Tunis")
    card = unescape(_card(client.get(URL.format("fr")).content.decode(), "NOGEO"))
    assert 'href="geo:0,0?q=1%20rue%20de%20Rome%2C%20Tunis"' in card
    assert 'href="https://www.openstreetmap.org/search?query=1+rue+de+Rome%2C+Tunis"' in card
    assert "Appelez l’agence pour connaître ses horaires." in card  # no hours entered yet


@pytest.fixture
def strike(tunis: Agency) -> AgencyHoursReduction:
    return AgencyHoursReduction.objects.create(
        agency=tunis,
        starts_on=dt.date(2026, 3, 10),
        ends_on=dt.date(2026, 3, 12),
        opens=dt.time(9),
        closes=dt.time(13),
        note_fr="Travaux : ouverture le matin seulement.",
        note_ar="أشغال: فتح صباحي فقط.",
    )


@pytest.mark.parametrize(
    ("utc", "shown"),
    [
        ("2026-03-09T22:30:00", False),  # 23:30 on the 9th in Tunis: not yet
        ("2026-03-09T23:30:00", True),  # 00:30 on the 10th in Tunis: it applies
        ("2026-03-12T22:59:00", True),  # 23:59 on the 12th, its last day
        ("2026-03-12T23:00:00", False),  # midnight in Tunis: over
    ],
)
def test_reduced_hours_and_their_note_show_while_they_apply_in_operator_time(
    client: Client, strike: AgencyHoursReduction, monkeypatch, utc: str, shown: bool
) -> None:
    _at(monkeypatch, utc)
    card = _card(client.get(URL.format("fr")).content.decode(), "TUN-C")
    assert ("Travaux : ouverture le matin seulement." in card) is shown
    assert ("Horaires réduits du 10 mars 2026 au 12 mars 2026" in card) is shown
    assert ('<bdi class="number">09:00–13:00</bdi>' in card) is shown
    # The usual week stays, named as such while the reduction applies.
    assert "08:00–12:00" in card
    assert ("Horaires habituels" in card) is shown


def test_the_note_is_in_arabic_on_the_arabic_page(client: Client, strike, monkeypatch) -> None:
    _at(monkeypatch, "2026-03-11T10:00:00")
    card = _card(client.get(URL.format("ar")).content.decode(), "TUN-C")
    assert "أشغال: فتح صباحي فقط." in card and "Travaux" not in card


def test_a_closure_says_closed_with_its_dates(client: Client, tunis: Agency, monkeypatch) -> None:
    AgencyHoursReduction.objects.create(
        agency=tunis, starts_on=dt.date(2026, 3, 10), ends_on=dt.date(2026, 3, 10), closed=True, note_fr="Grève."
    )
    _at(monkeypatch, "2026-03-10T08:00:00")
    card = _card(client.get(URL.format("fr")).content.decode(), "TUN-C")
    assert "Fermée du 10 mars 2026 au 10 mars 2026" in card and "Grève." in card
    assert "Horaires réduits" not in card


def test_the_database_refuses_hours_that_make_no_sense(tunis: Agency) -> None:
    bad = [
        lambda: AgencyHours.objects.create(agency=tunis, weekday=7, opens=dt.time(12), closes=dt.time(8)),
        lambda: AgencyHours.objects.create(agency=tunis, weekday=8, opens=dt.time(8), closes=dt.time(12)),
        lambda: AgencyHoursReduction.objects.create(
            agency=tunis, starts_on=dt.date(2026, 3, 10), ends_on=dt.date(2026, 3, 9), closed=True
        ),
        # Closed and yet with hours; open and yet without.
        lambda: AgencyHoursReduction.objects.create(
            agency=tunis, starts_on=dt.date(2026, 3, 10), ends_on=dt.date(2026, 3, 11), closed=True, opens=dt.time(9)
        ),
        lambda: AgencyHoursReduction.objects.create(
            agency=tunis, starts_on=dt.date(2026, 3, 10), ends_on=dt.date(2026, 3, 11)
        ),
        lambda: Agency.objects.filter(pk=tunis.pk).update(phone="71 123 456"),
        lambda: Agency.objects.filter(pk=tunis.pk).update(longitude=None),
    ]
    for attempt in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            attempt()


def test_the_login_page_and_every_page_footer_link_to_the_agencies(client: Client) -> None:
    login = client.get("/ar/login/").content.decode()
    assert login.count(f'href="{reverse("accounts:agency_list")}"'.replace("/fr/", "/ar/")) == 2  # card, footer
    assert "وكالاتنا" in login


def test_the_page_costs_a_fixed_number_of_queries(client: Client, django_assert_max_num_queries) -> None:
    for _ in range(8):
        agency = AgencyFactory()
        AgencyHours.objects.create(agency=agency, weekday=1, opens=dt.time(8), closes=dt.time(12))
        AgencyHoursReduction.objects.create(
            agency=agency, starts_on=timezone.localdate(), ends_on=timezone.localdate(), closed=True
        )
    with django_assert_max_num_queries(3):
        assert client.get(URL.format("fr")).status_code == 200
