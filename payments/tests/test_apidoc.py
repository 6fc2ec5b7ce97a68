"""The published documentation cannot rot: its worked example is recomputed, its
README snippet runs against a live server, and the docs page is local and CSP-clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from billing.tests.factories import BillFactory, ServiceAccountFactory
from payments.apidoc import DESCRIPTION, EXAMPLE
from payments.signing import signature_compute, string_to_sign

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_worked_example_is_a_real_computation() -> None:
    computed = signature_compute(
        secret=EXAMPLE["secret"], timestamp=EXAMPLE["timestamp"], method=EXAMPLE["method"],
        path=EXAMPLE["path"], body=EXAMPLE["body"].encode(),
    )  # fmt: skip
    assert computed == EXAMPLE["hex"]
    signed = string_to_sign(timestamp=EXAMPLE["timestamp"], method="POST", path=EXAMPLE["path"], body=b"{}")
    assert signed == f"{EXAMPLE['timestamp']}\nPOST\n{EXAMPLE['path']}\n{{}}".encode()


def test_the_docs_and_the_readme_show_the_same_example() -> None:
    for text in (DESCRIPTION, README):
        assert f"v1={EXAMPLE['hex']}" in text
        assert EXAMPLE["secret"] in text
        assert EXAMPLE["body"] in text
        assert EXAMPLE["timestamp"] in text


@pytest.mark.django_db
def test_the_schema_is_openapi_3_with_the_signature_scheme(client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/accounts/{account_number}/due",
        "/api/v1/payments",
        "/api/v1/payments/{reference}",
        "/api/v1/payments/{reference}/reversal",
    }
    schemes = schema["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"X-Provider-Key", "X-Timestamp", "X-Signature"}
    assert EXAMPLE["hex"] in schema["info"]["description"]


@pytest.mark.django_db
def test_the_schema_describes_what_to_post(client) -> None:
    # A bank generates its client from the schema: without the bodies it cannot
    # send a payment or a reversal at all.
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    payment = schema["paths"]["/api/v1/payments"]["post"]["requestBody"]
    reversal = schema["paths"]["/api/v1/payments/{reference}/reversal"]["post"]["requestBody"]
    assert payment["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PaymentCreateRequest"}
    assert reversal["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReversalInRequest"}
    fields = schema["components"]["schemas"]["PaymentCreateRequest"]
    assert set(fields["properties"]) == {
        "reference", "account_number", "bill_number", "amount", "currency", "paid_at", "channel",
    }  # fmt: skip
    assert set(fields["required"]) == {"reference", "account_number", "amount", "currency", "paid_at"}
    assert schema["components"]["schemas"]["ReversalInRequest"]["required"] == ["reason"]


@pytest.mark.django_db
def test_the_docs_page_needs_no_cdn_and_no_inline_script_or_style(client, settings) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "https://" not in html and "http://" not in html  # every asset is ours
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert "<style" not in html and "style=" not in html
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert len(sources) == 3
    for src in sources:
        src = src.replace("&amp;", "&")
        if src.startswith(settings.STATIC_URL):  # shipped by drf-spectacular-sidecar
            assert finders.find(src.removeprefix(settings.STATIC_URL)), src
        else:  # the start-up script, a file of its own
            script = client.get(src)
            assert script.status_code == 200
            assert script["Content-Type"].startswith("application/javascript")


@pytest.mark.django_db(transaction=True)
def test_the_readme_snippet_pays_a_bill_against_a_live_server(live_server, settings, subscriber) -> None:
    # The bank engineer's copy-and-paste, run as printed, against the sandbox bank.
    from payments.demo import sandbox_provider_ensure

    settings.DEBUG = True
    sandbox_provider_ensure()
    account = ServiceAccountFactory(subscriber=subscriber, number="1000000016")
    bill = BillFactory(account=account)
    snippet = re.search(r"```python\n(.*?)```", README.split("## Bank and wallet API")[1], re.S).group(1)
    snippet = snippet.replace('"http://127.0.0.1:8000"', repr(live_server.url))
    printed: list = []
    exec(compile(snippet, "README.md", "exec"), {"print": lambda *a: printed.append(a)})  # noqa: S102
    (status, due), ((status2, paid),) = printed[0], printed[1]
    assert (status, due["total_due"]) == (200, "59.500")
    assert (status2, paid["status"], paid["allocations"]) == (
        201,
        "applied",
        [{"bill_number": bill.number, "amount": "59.500"}],
    )
