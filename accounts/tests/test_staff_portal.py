"""A staff user who opens the portal (the admin's "view site") is taken back to
the back office, not shown a 404 (issue 10)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User

from .factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/fr/", "/fr/dashboard/", "/ar/bills/", "/fr/messages/", "/fr/contact/"])
def test_staff_on_a_subscriber_page_is_sent_to_the_back_office(client: Client, clerk: User, path: str) -> None:
    client.force_login(clerk)
    response = client.get(path, follow=True)
    assert response.redirect_chain, f"{path} answered {response.status_code}"
    final = response.redirect_chain[-1][0]
    assert "/admin/" in final, response.redirect_chain
    assert response.status_code != 404


def test_a_user_without_profile_who_is_not_staff_still_gets_a_404(client: Client) -> None:
    client.force_login(UserFactory(email="nobody@example.com", is_staff=False))
    assert client.get("/fr/dashboard/").status_code == 404
