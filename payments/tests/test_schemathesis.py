"""schemathesis against /api/schema/: generated requests, each validly signed,
never get a 5xx and always get an answer the schema describes. Positive and
negative generation, bounded so it runs in well under a minute."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.tests.factories import BillFactory
from payments.models import ApiInbox
from payments.services import payment_apply
from payments.signing import signature_header

from .factories import SECRET

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 25


def signing(app, *, key_id: str, secret: str):
    """WSGI middleware standing in for the bank: it signs whatever schemathesis sends,
    the exact bytes and path Django will see."""

    def wrapped(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = WSGIRequest({**environ, "wsgi.input": io.BytesIO(body)}).get_full_path()
        ts = str(int(dt.datetime.now(dt.UTC).timestamp()))
        environ["HTTP_X_PROVIDER_KEY"] = key_id
        environ["HTTP_X_TIMESTAMP"] = ts
        environ["HTTP_X_SIGNATURE"] = signature_header(
            secret=secret, timestamp=ts, method=environ["REQUEST_METHOD"], path=path, body=body
        )
        return app(environ, start_response)

    return wrapped


@pytest.fixture
def keep_the_test_connection():
    # A raw WSGI app closes "old" connections around each request, the test's
    # own among them (Django's test client disconnects this the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_the_test_connection")
def test_generated_signed_requests_never_fault_and_match_the_schema(bank):
    bill = BillFactory()
    payment_apply(provider=bank, reference="KNOWN-1", account_number=bill.account.number, amount=bill.amount_due,
                  currency="TND", paid_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC))  # fmt: skip
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", signing(get_wsgi_application(), key_id=bank.key_id, secret=SECRET)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            def run(case) -> None:
                case.call_and_validate(checks=CHECKS)

            run()
    # Signed, so they reached the views (each is in the inbox), not just the signature check.
    assert ApiInbox.objects.count() > 4 * MAX_EXAMPLES
