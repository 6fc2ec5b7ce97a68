"""The hooks' limits: no callback token in any log line, and a cap on the
delivery reports kept for messages we do not know."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.utils import timezone

from core.logging import MaskSecretsInPaths
from notifications.models import DeliveryReport, Message

pytestmark = pytest.mark.django_db

TOKEN = "cb-secret-4d1e9a"


@pytest.fixture(autouse=True)
def hooks(settings) -> None:
    settings.DEBUG = False
    settings.AFRICASTALKING_CALLBACK_TOKEN = TOKEN


def _report(client: Client, form: str, token: str = TOKEN):
    return client.post(f"/hooks/sms/africastalking/{token}/", form, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    "form",
    [
        "id=a%00b&status=Success",  # 400 from the guard
        "id=ATXid_1&status=Nope",  # 400 from the hook
        "id=ATXid_unknown&status=Success",  # 404
    ],
)
def test_a_refused_report_logs_no_token(caplog, form: str) -> None:
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO):
        response = _report(client, form)

    assert 400 <= response.status_code < 500
    assert caplog.records, "django.request logs the refusal"
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert "/hooks/sms/africastalking/***/" in caplog.text


def test_a_500_on_the_hook_logs_no_token(caplog, monkeypatch) -> None:
    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("notifications.webhooks.delivery_report_record", broken)
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO):
        response = _report(client, "id=ATXid_1&status=Success")

    assert response.status_code == 500
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("logger", ["django.server", "gunicorn.access", "django.request"])
def test_access_log_lines_are_masked(caplog, logger: str) -> None:
    with caplog.at_level(logging.INFO, logger=logger):
        logging.getLogger(logger).info('"%s" %s %s', f"POST /hooks/sms/africastalking/{TOKEN}/ HTTP/1.1", "403", "52")

    assert TOKEN not in caplog.text
    assert '"POST /hooks/sms/africastalking/***/ HTTP/1.1" 403 52' in caplog.text


def test_the_mask_leaves_other_lines_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", ("/fr/bills/",), None)
    MaskSecretsInPaths().filter(record)
    assert record.getMessage() == "GET /fr/bills/"


def _sent_sms(subscriber, provider_message_id: str) -> Message:
    return Message.objects.create(
        dedupe_key=f"test:{provider_message_id}", event="bill_issued", subscriber=subscriber, channel_kind="sms",
        address="+21620111222", language="fr", body="Votre facture", status=Message.Status.SENT,
        provider="africastalking", provider_message_id=provider_message_id, next_attempt_at=timezone.now(),
    )  # fmt: skip


def test_unmatched_reports_stop_being_kept_at_the_cap(settings) -> None:
    settings.SELFCARE_UNMATCHED_REPORTS_MAX = 3
    client = Client(raise_request_exception=False)
    for n in range(3):
        assert _report(client, f"id=ATXid_{n}&status=Success").status_code == 404

    response = _report(client, "id=ATXid_3&status=Success")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "report_inbox_full"
    assert DeliveryReport.objects.count() == 3
    # A replay of a kept report and a report for a known message still go through.
    assert _report(client, "id=ATXid_0&status=Success").status_code == 404
    assert DeliveryReport.objects.count() == 3


def test_a_report_for_a_known_message_is_applied_even_at_the_cap(settings, subscriber) -> None:
    settings.SELFCARE_UNMATCHED_REPORTS_MAX = 1
    client = Client(raise_request_exception=False)
    _report(client, "id=ATXid_stray&status=Success")
    message = _sent_sms(subscriber, "ATXid_mine")

    response = _report(client, "id=ATXid_mine&status=Success")

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_a_whatsapp_call_with_too_many_statuses_is_refused_whole(settings) -> None:
    import hashlib
    import hmac
    import json

    settings.WHATSAPP_APP_SECRET = "s3cret"
    settings.SELFCARE_HOOK_MAX_REPORTS = 5
    statuses = [{"id": f"wamid.{n}", "status": "delivered"} for n in range(6)]
    body = json.dumps({"entry": [{"changes": [{"value": {"statuses": statuses}}]}]}).encode()
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

    response = Client(raise_request_exception=False).post(
        "/hooks/whatsapp/", body, content_type="application/json", headers={"X-Hub-Signature-256": signature}
    )

    assert response.status_code == 413
    assert not DeliveryReport.objects.exists()
