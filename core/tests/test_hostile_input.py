"""Hostile input gets a clear 4xx, never a 500, and leaves no row behind.

Each request runs as on a production server (DEBUG off) through a client that
turns an exception into the 500 a visitor would see. The named findings of the
security review come first; then a table-driven walk of every URL pattern of
the URLconf with hostile path segments, query values, form bodies, cookies and
headers, as an anonymous visitor, as a subscriber and as a superuser; then
property tests of the hooks' input checks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.models import Subscriber
from billing.models import Bill, PrintRequest
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.hostile import HostileInput, json_body_parse
from notifications.models import DeliveryReport

pytestmark = pytest.mark.django_db

CALLBACK_TOKEN = "cb-hostile-7f3a"
APP_SECRET = "meta-app-secret-hostile"


@pytest.fixture(autouse=True)
def production(settings) -> None:
    settings.DEBUG = False
    settings.AFRICASTALKING_CALLBACK_TOKEN = CALLBACK_TOKEN
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_VERIFY_TOKEN = "verify-hostile"
    # Hundreds of refused logins: hashing each with the real cost tests nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _client(user=None) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def alice(subscriber: Subscriber) -> Client:
    BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    return _client(subscriber.user)


def _signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def _whatsapp(client: Client, body: bytes, signature: str | None = None):
    return client.post(
        "/hooks/whatsapp/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signature if signature is not None else _signature(body)},
    )


def _statuses_body(status: str) -> bytes:
    return (
        b'{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages",'
        b' "value": {"statuses": [' + status.encode() + b"]}}]}]}"
    )


# --- The review's findings, one by one ----------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", "/fr/bills/%00/"), ("get", "/fr/accounts/%00/plan/"), ("post", "/fr/bills/%00/paper-copy/")],
)
def test_a_nul_in_a_bill_or_account_url_is_a_400(alice: Client, method: str, url: str) -> None:
    response = getattr(alice, method)(url)

    assert response.status_code == 400
    assert not PrintRequest.objects.exists()


@pytest.mark.parametrize("number", ["abc", "1" * 400, "1000000016-2026111", "１０００００００１６"])
def test_a_bill_or_account_number_of_the_wrong_shape_is_a_404(alice: Client, number: str) -> None:
    # The path converters: only ten digits (and a period) reach a lookup.
    for method, url in [
        ("get", f"/fr/bills/{number}/"),
        ("post", f"/fr/bills/{number}/paper-copy/"),
        ("get", f"/fr/accounts/{number}/plan/"),
        ("get", f"/fr/accounts/{number}/consumption/"),
        ("get", f"/b/{number}"),
    ]:
        assert getattr(alice, method)(url).status_code == 404, url
    assert not PrintRequest.objects.exists()


def test_the_sms_short_link_refuses_a_nul_and_still_leads_to_a_bill() -> None:
    assert _client().get("/b/%00").status_code == 400
    assert _client().get("/b/1000000016-202611").status_code == 302


def test_a_non_ascii_signature_header_is_refused_without_a_secret_involved(settings) -> None:
    response = _whatsapp(_client(), b"{}", signature="sha256=\xe9t\xe9")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"


@pytest.mark.parametrize(
    "status",
    [
        '{"id": "wamid.a\\u0000b", "status": "read"}',
        '{"id": "wamid.1", "status": "read", "note": "\\u0000"}',
        '{"id": "wamid.a\\ud800b", "status": "read"}',
        '{"id": "wamid.1", "status": "read", "\\udfff": 1}',
        '{"id": "wamid.1", "status": "read", "pricing": 1e400}',
        '{"id": "wamid.1", "status": "read", "pricing": -1e400}',
        '{"id": "wamid.1", "status": "read", "pricing": NaN}',
        '{"id": "wamid.1", "status": "read", "pricing": Infinity}',
        '{"id": "wamid.1", "status": "read", "pricing": ' + "9" * 5000 + "}",
        '{"id": "wamid.1", "status": "read", "deep": ' + "[" * 100 + "]" * 100 + "}",
        '{"id": "' + "w" * 129 + '", "status": "read"}',
        '{"id": "wamid 1", "status": "read"}',
        '{"id": "wamid.1", "status": "read", "big": "' + "x" * 20_000 + '"}',
    ],
)
def test_a_signed_whatsapp_body_that_cannot_be_stored_is_a_400_and_stores_nothing(status: str) -> None:
    response = _whatsapp(_client(), _statuses_body(status))

    assert response.status_code == 400
    assert not DeliveryReport.objects.exists()


def test_a_signed_body_of_100000_nested_brackets_is_a_400() -> None:
    body = b"[" * 100_000 + b"]" * 100_000

    response = _whatsapp(_client(), body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


def test_a_bad_status_after_good_ones_stores_none_of_them() -> None:
    good = '{"id": "wamid.%d", "status": "delivered"}'
    body = _statuses_body(",".join([good % 1, good % 2, '{"id": "wamid.3", "status": "seen"}']))

    response = _whatsapp(_client(), body)

    assert response.status_code == 400
    assert not DeliveryReport.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "id=a%00b&status=Success",
        "id=ATXid_1&status=Success&failureReason=%00",
        "id=ATXid_1&status=Success&%00=x",
        "id=a%ED%A0%80b&status=Success",
        "id=a%FFb&status=Success",
        "id=" + "9" * 200 + "&status=Success",
        "id=ATXid_1&status=Success&networkCode=" + "x" * 20_000,
        "id=ATXid_1&status=Success&" + "&".join(f"f{i}=x" for i in range(40)),
        "id=ATXid_1&status=Succ%00ess",
    ],
)
def test_a_hostile_africastalking_report_is_a_400_and_stores_nothing(body: str) -> None:
    response = _client().post(
        f"/hooks/sms/africastalking/{CALLBACK_TOKEN}/", body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert not DeliveryReport.objects.exists()


def test_a_multipart_africastalking_report_with_a_nul_is_a_400_too() -> None:
    # Multipart bodies pass the request-wide guard (it leaves them to the forms).
    response = _client().post(f"/hooks/sms/africastalking/{CALLBACK_TOKEN}/", {"id": "a\x00b", "status": "Success"})

    assert response.status_code == 400
    assert not DeliveryReport.objects.exists()


@pytest.mark.parametrize("cookie", ["sessionid", "csrftoken", "django_language", "anything"])
def test_a_nul_in_a_cookie_is_a_400(cookie: str) -> None:
    client = _client()
    client.cookies[cookie] = "abcdefgh\x00ijklmnop"

    assert client.get("/fr/dashboard/").status_code == 400


@pytest.mark.parametrize(
    "url", ["/fr/bills/?page=%00", "/fr/bills/?status=%00", "/fr/admin/?q=%00", "/fr/login/?next=%00"]
)
def test_a_nul_in_a_query_value_is_a_400(alice: Client, url: str) -> None:
    assert alice.get(url).status_code == 400


# --- Every URL pattern, walked with hostile input ---------------------------------

# Already URL-encoded: the client decodes the path, as a server would.
HOSTILE_SEGMENTS = [
    "%00",
    "a%00b",
    "%ED%A0%80",  # a lone surrogate, as UTF-8 bytes
    "%FF%FE",
    "%C3%A9%D8%B9",
    "9" * 400,
    "-1",
    "1e400",
    "NaN",
    "x" * 3000,
    "..%2F..%2Fetc",
]
HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "\ud800",
    "9" * 400,
    "-99999999999999999999",
    "1e400",
    "NaN",
    "x" * 100_000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
]
FORM_FIELDS = [
    "username", "password", "email", "phone", "address", "kind", "code", "language", "next", "paperless",
    "new_password1", "new_password2", "id", "status", "page", "year", "account", "q", "o", "p",
    "action", "_selected_action", "index", "hub.mode", "hub.verify_token", "hub.challenge", "csrfmiddlewaretoken",
]  # fmt: skip
# Parameters of a URL pattern: <conv:name> or (?P<name>…).
PARAMETER = re.compile(r"<(?:[^>:]+:)?[^>]+>|\(\?P<[^>]+>[^)]*\)")


def _routes(patterns=None, prefix: str = "") -> Iterator[str]:
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern).lstrip("^").removesuffix("$").removesuffix(r"\Z")
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def _encode(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _urls(*, admin_segments: list[str], admin_values: list[str]) -> list[str]:
    """Every route with each parameter replaced by a hostile segment, and every
    route without one with hostile query values. The admin's dozens of routes
    are alike per model: they get a shorter list."""
    urls: set[str] = set()
    for route in _routes():
        admin = route.startswith(("fr/admin/", "en/admin/", "ar/admin/"))
        segments, values = (admin_segments, admin_values) if admin else (HOSTILE_SEGMENTS, HOSTILE_VALUES[:4])
        names = ("q", "o", "p", "e") if admin else ("page", "status", "year", "account", "next")
        if PARAMETER.search(route):
            urls.update("/" + PARAMETER.sub(segment, route) for segment in segments)
        else:
            urls.update(f"/{route}?{name}={_encode(value)}" for name in names for value in values)
    return sorted(urls)


def _counts() -> dict[str, int]:
    """Rows of every model of ours: a refused request must not have written any."""
    return {
        model._meta.label: model._default_manager.count()
        for app in ("accounts", "billing", "notifications")
        for model in apps.get_app_config(app).get_models()
    }


def _forms() -> list[str]:
    return ["&".join(f"{name}={_encode(value)}" for name in FORM_FIELDS) for value in HOSTILE_VALUES]


@pytest.mark.parametrize("persona", ["anonymous", "subscriber", "superuser"])
def test_every_url_answers_hostile_paths_queries_and_forms_with_less_than_500(
    persona: str, subscriber: Subscriber, superuser
) -> None:
    BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    user = {"anonymous": None, "subscriber": subscriber.user, "superuser": superuser}[persona]
    client = _client(user)
    # Only the superuser gets past the admin's login: the others walk it once.
    if persona == "superuser":
        urls = _urls(admin_segments=["%00", "%ED%A0%80", "9" * 400, "x" * 3000], admin_values=["\x00", "9" * 400])
    else:
        urls = _urls(admin_segments=["9" * 400], admin_values=["x" * 3000])
    before = _counts()
    failures = []
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {url[:120]} -> {response.status_code}")
    # Hostile form bodies on every page without parameters.
    for route in sorted({u.split("?")[0] for u in urls if "?" in u}):
        admin = "/admin/" in route
        for body in (_forms()[3::4] if persona == "superuser" else _forms()[3:4]) if admin else _forms():
            response = client.post(route, body, content_type="application/x-www-form-urlencoded")
            if response.status_code >= 500:
                failures.append(f"POST {route} form {body[:60]} -> {response.status_code}")
    assert not failures, "\n".join(failures)
    assert _counts() == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept-Language": "fr\xe9,ar;q=\xff"},
        {"Accept-Language": "x" * 10_000},
        {"Accept-Language": "fr;q=1e400, ar;q=NaN"},
        {"Referer": "http://\xe9\xe9/"},
        {"User-Agent": "\xff\xfe" * 1000},
        {"X-Forwarded-For": "\xe9, 1.2.3.4"},
        {"Host": "h\xe9llo"},
        {"Cookie": "sessionid=\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9"},
    ],
)
def test_non_ascii_and_huge_headers_are_answered_below_500(subscriber: Subscriber, headers: dict[str, str]) -> None:
    BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    for client in (_client(), _client(subscriber.user)):
        for url in ("/fr/login/", "/fr/dashboard/", "/fr/bills/", "/b/1000000016-202611", "/hooks/whatsapp/", "/"):
            for method in ("get", "post"):
                response = getattr(client, method)(url, headers=headers)
                assert response.status_code < 500, (method, url, headers)


# --- Property tests of the hooks' input ------------------------------------------

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message_id=ANY_TEXT, status=st.sampled_from(["Success", "Failed", "x", ""]) | ANY_TEXT, extra=ANY_TEXT)
def test_any_africastalking_form_is_answered_below_500(message_id: str, status: str, extra: str) -> None:
    body = f"id={_encode(message_id)}&status={_encode(status)}&failureReason={_encode(extra)}"

    response = _client().post(
        f"/hooks/sms/africastalking/{CALLBACK_TOKEN}/", body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code < 500
    assert response.status_code in (400, 404) or DeliveryReport.objects.filter(provider_message_id=message_id)


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12
)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_what_the_json_parser_accepts_postgresql_stores(value) -> None:
    import json

    body = json.dumps({"v": value}).encode("utf-8", "surrogatepass")
    try:
        parsed = json_body_parse(body)
    except HostileInput:
        return
    # What was accepted goes into jsonb without an error (the old 500s were here).
    report = DeliveryReport.objects.create(
        provider="p", provider_message_id="m", raw_status="s", status="sent", payload=parsed
    )
    report.delete()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=JSON_VALUES)
def test_any_signed_whatsapp_status_is_answered_below_500(status) -> None:
    import json

    body = _statuses_body(json.dumps(status))

    response = _whatsapp(_client(), body.decode("utf-8", "surrogatepass").encode("utf-8", "surrogatepass"))

    assert response.status_code < 500


def test_bill_numbers_still_open_bills(alice: Client, subscriber: Subscriber) -> None:
    bill = Bill.objects.get(account__subscriber=subscriber)

    assert alice.get(f"/fr/bills/{bill.number}/").status_code == 200
    assert alice.get(f"/fr/accounts/{bill.account.number}/plan/").status_code == 200
