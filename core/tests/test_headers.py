"""Response headers a browser acts on: a strict Content-Security-Policy on every
page (and nothing inline that would need 'unsafe-inline'), and no-store on
whatever shows a subscriber's data or the back office."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from accounts.models import Subscriber
from billing.tests.factories import BillFactory, ConsumptionFactory, ServiceAccountFactory
from core.middleware import NoStoreForPrivatePagesMiddleware
from notifications.tests.factories import VerifiedChannelFactory

pytestmark = pytest.mark.django_db


class InlineFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, <style> blocks,
    style attributes, on* handlers and javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src") and names.get("type") != "application/json":
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"javascript: URL on <{tag}>")

    handle_startendtag = handle_starttag


def _subscriber_pages(subscriber: Subscriber) -> list[str]:
    account = ServiceAccountFactory(subscriber=subscriber)
    ConsumptionFactory(account=account)
    bill = BillFactory(account=account)
    channel = VerifiedChannelFactory(subscriber=subscriber, verified_at=None)
    return [
        "/fr/dashboard/", "/ar/dashboard/", "/fr/bills/", f"/fr/bills/{bill.number}/",
        f"/ar/accounts/{account.number}/consumption/", f"/fr/accounts/{account.number}/plan/",
        "/fr/messages/", "/fr/contact/", f"/fr/contact/{channel.pk}/verify/", f"/fr/contact/{channel.pk}/edit/",
    ]  # fmt: skip


ANONYMOUS_PAGES = ["/fr/login/", "/ar/login/", "/fr/password-reset/", "/fr/admin/login/"]
ADMIN_PAGES = [
    "/fr/admin/",
    "/fr/admin/accounts/subscriber/",
    "/fr/admin/billing/bill/",
    "/fr/admin/accounts/user/add/",
]


def _assert_strict_csp(response, url: str) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, url
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, url
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, url


def _assert_nothing_inline(response, url: str) -> None:
    finder = InlineFinder()
    finder.feed(response.content.decode())
    assert not finder.found, f"{url}: {sorted(set(finder.found))}"


def test_every_subscriber_page_has_a_strict_csp_and_nothing_inline(client: Client, subscriber: Subscriber) -> None:
    pages = _subscriber_pages(subscriber)
    client.force_login(subscriber.user)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_strict_csp(response, url)
        _assert_nothing_inline(response, url)


def test_the_public_pages_have_a_strict_csp_and_nothing_inline(client: Client) -> None:
    for url in ANONYMOUS_PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_strict_csp(response, url)
        _assert_nothing_inline(response, url)


def test_the_admin_pages_have_a_strict_csp_and_nothing_inline(client: Client, superuser, subscriber) -> None:
    client.force_login(superuser)
    for url in ADMIN_PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_strict_csp(response, url)
        _assert_nothing_inline(response, url)


def test_an_error_page_and_a_hook_carry_the_policy_too(client: Client) -> None:
    for response in (client.get("/fr/no-such-page/"), client.post("/hooks/whatsapp/", b"{}", "application/json")):
        _assert_strict_csp(response, response.request["PATH_INFO"])


def test_subscriber_pages_are_never_stored(client: Client, subscriber: Subscriber) -> None:
    pages = _subscriber_pages(subscriber)
    client.force_login(subscriber.user)
    for url in pages:
        assert "no-store" in client.get(url).headers.get("Cache-Control", ""), url


def test_admin_pages_are_never_stored_not_even_the_redirect_to_its_login(client: Client, superuser) -> None:
    assert "no-store" in client.get("/fr/admin/billing/bill/").headers.get("Cache-Control", "")
    client.force_login(superuser)
    for url in ADMIN_PAGES:
        assert "no-store" in client.get(url).headers.get("Cache-Control", ""), url


def test_a_logged_in_redirect_is_not_stored_but_the_same_one_anonymous_keeps_todays_headers(
    client: Client, subscriber: Subscriber
) -> None:
    # "/" redirects to the dashboard for everybody; only a signed-in answer is private.
    assert "Cache-Control" not in client.get("/fr/").headers
    client.force_login(subscriber.user)
    assert "no-store" in client.get("/fr/").headers["Cache-Control"]


def test_a_view_that_sets_its_own_cache_control_keeps_it(client: Client, subscriber: Subscriber) -> None:
    def view(request):
        response = HttpResponse("public")
        response["Cache-Control"] = "public, max-age=60"
        return response

    request = RequestFactory().get("/fr/dashboard/")
    request.user = subscriber.user
    response = NoStoreForPrivatePagesMiddleware(view)(request)

    assert response["Cache-Control"] == "public, max-age=60"
