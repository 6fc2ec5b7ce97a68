"""`/favicon.ico` answers (issue 10): every page visit used to log a 404."""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.test import Client


def test_favicon_redirects_to_the_static_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].startswith("/static/") and response["Location"].endswith(".ico")
    path = finders.find("favicon.ico")
    assert path
    with open(path, "rb") as icon:
        assert icon.read(4) == b"\x00\x00\x01\x00"  # an ICO file
