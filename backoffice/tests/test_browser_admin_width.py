"""Every back-office list fits a 1,280 px screen (issue 10): in chromium at 1280 x 800,
the demo's clerk and superuser open every changelist registered, in French (left
to right) and Arabic (right to left), with a row of every model on it; no column
goes under the filter panel and the page never scrolls sideways.
Screenshots: `fr-admin-<model>-1280.png`, `ar-admin-<model>-1280.png`."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import translation

from accounts.tests.test_scoping import alices_agency  # noqa: F401 - fixture: a row of every model
from billing.demo import DEMO_ADMIN_EMAIL, DEMO_CLERK_EMAIL, DEMO_PASSWORD
from billing.tests.browser import (
    Demo,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREEN = {"width": 1280, "height": 800}


def admin_login(page: Any, base_url: str, language: str, email: str) -> None:
    page.goto(f"{base_url}/{language}/admin/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")


def changelists(language: str) -> list[tuple[str, str]]:
    with translation.override(language):
        return [
            (model._meta.model_name, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
            for model in admin.site._registry
        ]


# Where the results table ends against the filter panel, and how wide the page is.
MEASURE = """() => {
    const table = document.querySelector('#result_list');
    const filter = document.querySelector('#changelist-filter');
    const box = (el) => el ? el.getBoundingClientRect().toJSON() : null;
    const gap = filter ? parseFloat(getComputedStyle(filter).marginInlineStart) : null;
    const columns = table ? [...table.querySelectorAll('thead th')].map(
        (th) => `${th.textContent.trim() || '☐'} ${Math.round(th.getBoundingClientRect().width)}`) : [];
    return {
        table: box(table), filter: box(filter), gap: gap, columns: columns.join(', '),
        scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
    };
}"""


@pytest.mark.parametrize("language", ["fr", "ar"])
@pytest.mark.parametrize("email", [DEMO_CLERK_EMAIL, DEMO_ADMIN_EMAIL])
def test_every_changelist_fits_1280_px_beside_its_filters(
    live_server: Any,
    demo: Demo,
    alices_agency: dict,  # noqa: F811 - the fixture imported above
    new_page: Any,
    language: str,
    email: str,
) -> None:
    # The demo clerk works at Alice's agency too, so each of their lists has rows.
    from accounts.models import User

    User.objects.get(email=DEMO_CLERK_EMAIL).agencies.add(demo.subscriber.agency, *_alices_agencies(alices_agency))
    page = new_page(SCREEN)
    admin_login(page, live_server.url, language, email)
    problems, measured = [], 0
    for name, url in changelists(language):
        response = page.goto(live_server.url + url)
        if response.status == 403:  # not this role's list
            continue
        assert response.status == 200, (url, response.status)
        box = page.evaluate(MEASURE)
        if box["scrollWidth"] > box["innerWidth"] + 1:
            problems.append(f"{url}: the page is {box['scrollWidth']}px wide")
        table, filter_ = box["table"], box["filter"]
        if table is None:
            continue
        measured += 1
        if filter_ is not None:
            if language == "ar":  # the panel stands on the left, the table starts right of it
                hidden = table["left"] < filter_["right"] - 1
            else:
                hidden = table["right"] > filter_["left"] + 1
            # The narrower panel's 16 px gap on both sides (Django's rtl.css had 30 in Arabic).
            if box["gap"] != 16:
                problems.append(f"{url}: {box['gap']}px between the table and the filters")
            if hidden:
                problems.append(f"{url}: the table ({table['left']:.0f}–{table['right']:.0f}) goes under the filters "
                                f"({filter_['left']:.0f}–{filter_['right']:.0f}); columns: {box['columns']}")  # fmt: skip
        elif table["right"] > box["innerWidth"] + 1 or table["left"] < -1:
            problems.append(f"{url}: the table ({table['left']:.0f}–{table['right']:.0f}) leaves the screen")
        if email == DEMO_ADMIN_EMAIL:
            shot(page, f"{language}-admin-{name}-1280")
    assert measured >= (20 if email == DEMO_ADMIN_EMAIL else 12), measured
    assert not problems, "\n".join(problems)


def _alices_agencies(rows: dict) -> list:
    from accounts.models import Agency

    return list(Agency.objects.filter(pk__in=rows[Agency]))
