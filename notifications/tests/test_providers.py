"""The providers as they see us: real HTTP to fake Africa's Talking and WhatsApp
Cloud servers, and their callbacks coming back into our hooks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ChannelKind, ContactChannel, Subscriber
from billing.messages import bill_announce
from billing.models import Bill
from billing.tests.factories import BillFactory, ServiceAccountFactory
from notifications import relay, services
from notifications.channels import registry
from notifications.models import DeliveryReport, Message
from notifications.tests import fakes
from notifications.tests.fakes import (
    GRAPH_ACCESS_TOKEN,
    GRAPH_PHONE_NUMBER_ID,
    SMS_API_KEY,
    SMS_USERNAME,
    FakeGraphApi,
    FakeSmsGateway,
    meta_signature,
    whatsapp_status_body,
)
from notifications.verification import channel_add, channel_verify

sms_gateway = fakes.sms_gateway
graph_api = fakes.graph_api

CALLBACK_TOKEN = "cb-7f3a9d2e"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"
SENDER_ID = "SELFCARE"
PHONE = "+21620111222"


@pytest.fixture(autouse=True)
def providers(settings, sms_gateway: FakeSmsGateway, graph_api: FakeGraphApi) -> Iterator[None]:
    settings.SELFCARE_SMS_PROVIDER = "africastalking"
    settings.AFRICASTALKING_URL = sms_gateway.send_url
    settings.AFRICASTALKING_API_KEY = SMS_API_KEY
    settings.AFRICASTALKING_USERNAME = SMS_USERNAME
    settings.AFRICASTALKING_SENDER_ID = SENDER_ID
    settings.AFRICASTALKING_CALLBACK_TOKEN = CALLBACK_TOKEN
    settings.SELFCARE_WHATSAPP_PROVIDER = "whatsapp_cloud"
    settings.WHATSAPP_GRAPH_URL = graph_api.graph_url
    settings.WHATSAPP_PHONE_NUMBER_ID = GRAPH_PHONE_NUMBER_ID
    settings.WHATSAPP_ACCESS_TOKEN = GRAPH_ACCESS_TOKEN
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_VERIFY_TOKEN = VERIFY_TOKEN
    settings.SELFCARE_PROVIDER_TIMEOUT = 5.0
    # No quiet hours: the outcome must not depend on when the suite runs.
    settings.SELFCARE_QUIET_HOURS = (dt.time(0, 0), dt.time(0, 0))
    registry.reset()
    yield
    registry.reset()


def relay_run(*, now: dt.datetime | None = None) -> dict[str, int]:
    """One pass of the relay, in this process: claim what is due, send it."""
    return relay.messages_send(relay.outbox_claim(limit=100, now=now))


def verified_channel(subscriber: Subscriber, *, kind: str = ChannelKind.SMS, address: str = PHONE) -> ContactChannel:
    return ContactChannel.objects.create(
        subscriber=subscriber, kind=kind, address=address, language="fr", verified_at=timezone.now()
    )


def announce_bill(subscriber: Subscriber) -> Message:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    assert bill_announce(bill=bill) == 1
    return Message.objects.get(subscriber=subscriber, reference=bill.account.number)


@pytest.fixture
def sms(subscriber: Subscriber) -> Message:
    verified_channel(subscriber)
    return announce_bill(subscriber)


@pytest.fixture
def sent_sms(sms: Message) -> Message:
    assert relay_run() == {"sent": 1, "retry": 0, "failed": 0, "skipped": 0, "cancelled": 0}
    sms.refresh_from_db()
    return sms


@pytest.fixture
def sent_whatsapp(subscriber: Subscriber) -> Message:
    verified_channel(subscriber, kind=ChannelKind.WHATSAPP)
    message = announce_bill(subscriber)
    relay_run()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    return message


# --- Africa's Talking: what the gateway receives ---------------------------


@pytest.mark.django_db
def test_the_gateway_receives_the_bill_in_africas_talking_format(sms: Message, sms_gateway: FakeSmsGateway) -> None:
    relay_run()

    [request] = sms_gateway.requests
    assert request.method == "POST"
    assert request.path == "/version1/messaging"
    assert request.headers["apikey"] == SMS_API_KEY
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["accept"] == "application/json"
    form = request.form
    assert set(form) == {"username", "to", "message", "from", "clientReference"}
    assert form["username"] == SMS_USERNAME
    assert form["from"] == SENDER_ID
    assert form["to"] == PHONE
    assert re.fullmatch(r"\+[1-9]\d{7,14}", form["to"])
    assert form["clientReference"] == sms.dedupe_key
    assert form["message"] == sms.body
    assert sms.reference in form["message"]
    assert "59,500" in form["message"]  # the amount due, French-formatted

    sms.refresh_from_db()
    [message_id] = sms_gateway.sent
    assert sms.status == Message.Status.SENT
    assert sms.provider == "africastalking"
    assert sms.provider_message_id == message_id
    assert sms.attempts == 1
    assert sms.sent_at is not None


@pytest.mark.django_db
def test_a_new_phone_gets_its_code_by_sms_in_e164_and_the_code_verifies_it(
    subscriber: Subscriber, sms_gateway: FakeSmsGateway
) -> None:
    # given a number typed the local way
    channel = channel_add(subscriber=subscriber, kind=ChannelKind.SMS, address="20 111 222", language="fr")

    relay_run()

    # then the gateway gets it in E.164, and the subscriber can type the code back
    [form] = sms_gateway.messages()
    assert form["to"] == PHONE
    code = re.search(r"\b(\d{6})\b", form["message"]).group(1)
    channel_verify(channel=channel, code=code)
    channel.refresh_from_db()
    assert channel.is_verified


@pytest.mark.django_db
def test_a_bill_is_not_sent_twice_when_the_relay_runs_again(sent_sms: Message, sms_gateway: FakeSmsGateway) -> None:
    assert bill_announce(bill=Bill.objects.get(account__number=sent_sms.reference)) == 0

    assert relay_run(now=timezone.now() + dt.timedelta(hours=2)) == {
        "sent": 0,
        "retry": 0,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
    }

    assert sms_gateway.receipts == {sent_sms.dedupe_key: 1}


# --- Failures: back off, or give up --------------------------------------


@pytest.mark.django_db
def test_a_gateway_500_backs_off_then_a_later_run_sends_it_once(sms: Message, sms_gateway: FakeSmsGateway) -> None:
    sms_gateway.fail_next(1)
    before = timezone.now()

    assert relay_run()["retry"] == 1

    sms.refresh_from_db()
    assert sms.status == Message.Status.PENDING
    assert sms.attempts == 1
    assert "500" in sms.last_error
    assert dt.timedelta(seconds=29) <= sms.next_attempt_at - before <= dt.timedelta(seconds=35)
    # while backing off, the gateway hears nothing more
    relay_run()
    assert len(sms_gateway.requests) == 1
    assert sms_gateway.deliveries == {}

    assert relay_run(now=timezone.now() + dt.timedelta(seconds=31))["sent"] == 1

    sms.refresh_from_db()
    assert sms.status == Message.Status.SENT
    assert sms.attempts == 2
    assert sms.last_error == ""
    assert len(sms_gateway.requests) == 2
    assert sms_gateway.deliveries == {sms.dedupe_key: 1}


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_refused_request_fails_for_good(sms: Message, sms_gateway: FakeSmsGateway, status: int) -> None:
    sms_gateway.refuse(status)

    assert relay_run()["failed"] == 1
    relay_run(now=timezone.now() + dt.timedelta(hours=2))

    sms.refresh_from_db()
    assert sms.status == Message.Status.FAILED
    assert str(status) in sms.last_error
    assert sms.attempts == 1
    assert len(sms_gateway.requests) == 1  # never tried again


@pytest.mark.django_db
def test_a_wrong_api_key_is_refused_by_the_gateway_and_fails_the_message(
    settings, sms: Message, sms_gateway: FakeSmsGateway
) -> None:
    settings.AFRICASTALKING_API_KEY = "atsk_revoked"

    relay_run()

    sms.refresh_from_db()
    assert sms.status == Message.Status.FAILED
    assert "401" in sms.last_error
    assert sms_gateway.deliveries == {}


@pytest.mark.django_db
def test_a_number_the_gateway_rejects_fails_for_good(sms: Message, sms_gateway: FakeSmsGateway) -> None:
    sms_gateway.reject_recipients(403, "InvalidPhoneNumber")

    relay_run()

    sms.refresh_from_db()
    assert sms.status == Message.Status.FAILED
    assert "InvalidPhoneNumber" in sms.last_error


@pytest.mark.django_db
def test_it_gives_up_after_the_last_attempt(settings, sms: Message, sms_gateway: FakeSmsGateway) -> None:
    settings.SELFCARE_OUTBOX_MAX_ATTEMPTS = 3
    sms_gateway.fail_next(99)
    later = timezone.now()

    for _ in range(5):
        later += dt.timedelta(hours=1)  # past any back-off
        relay_run(now=later)

    sms.refresh_from_db()
    assert sms.status == Message.Status.FAILED
    assert sms.attempts == 3
    assert "500" in sms.last_error
    assert len(sms_gateway.requests) == 3


# --- Africa's Talking delivery reports ------------------------------------


def at_hook(token: str = CALLBACK_TOKEN) -> str:
    return reverse("hook_africastalking", args=[token])


@pytest.mark.django_db
def test_a_delivery_report_marks_the_sms_delivered(client: Client, sent_sms: Message) -> None:
    response = client.post(at_hook(), {"id": sent_sms.provider_message_id, "status": "Success", "networkCode": "60502"})

    assert response.status_code == 200
    assert response.json() == {"status": "delivered"}
    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.DELIVERED
    assert sent_sms.delivered_at is not None


@pytest.mark.django_db
def test_a_replayed_delivery_report_is_stored_once(client: Client, sent_sms: Message) -> None:
    report = {"id": sent_sms.provider_message_id, "status": "Success"}
    client.post(at_hook(), report)
    sent_sms.refresh_from_db()
    first_delivery = sent_sms.delivered_at

    response = client.post(at_hook(), report)

    assert response.status_code == 200
    assert DeliveryReport.objects.count() == 1
    sent_sms.refresh_from_db()
    assert sent_sms.delivered_at == first_delivery


@pytest.mark.django_db
def test_a_failure_report_fails_a_sent_sms(client: Client, sent_sms: Message) -> None:
    response = client.post(at_hook(), {"id": sent_sms.provider_message_id, "status": "Rejected"})

    assert response.json() == {"status": "failed"}
    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.FAILED
    assert sent_sms.last_error == "africastalking: Rejected"


@pytest.mark.django_db
def test_a_late_failure_report_cannot_undo_a_delivery(client: Client, sent_sms: Message) -> None:
    client.post(at_hook(), {"id": sent_sms.provider_message_id, "status": "Success"})

    response = client.post(at_hook(), {"id": sent_sms.provider_message_id, "status": "Failed"})

    assert response.json() == {"status": "delivered"}
    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.DELIVERED
    assert sent_sms.last_error == ""


@pytest.mark.django_db
def test_a_report_with_a_bad_token_is_refused_and_not_stored(client: Client, sent_sms: Message) -> None:
    response = client.post(at_hook("guessed"), {"id": sent_sms.provider_message_id, "status": "Success"})

    assert response.status_code == 403
    assert not DeliveryReport.objects.exists()
    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.SENT


@pytest.mark.django_db
@pytest.mark.parametrize(
    "form",
    [
        {},
        {"id": "ATXid_1"},
        {"status": "Success"},
        {"id": "ATXid_1", "status": "Delivered"},
        {"id": " ", "status": "Success"},
    ],
)
def test_a_report_missing_a_field_or_with_an_unknown_status_is_a_400(client: Client, form: dict[str, str]) -> None:
    response = client.post(at_hook(), form)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_report"
    assert not DeliveryReport.objects.exists()


@pytest.mark.django_db
def test_a_report_for_an_unknown_id_is_a_404_and_is_kept(client: Client) -> None:
    response = client.post(at_hook(), {"id": "ATXid_early", "status": "Success"})

    assert response.status_code == 404
    report = DeliveryReport.objects.get()
    assert (report.provider_message_id, report.status, report.applied_at) == ("ATXid_early", "delivered", None)


def test_a_report_that_beats_the_send_reply_is_applied_once_the_id_is_stored(
    live_server, subscriber: Subscriber, sms_gateway: FakeSmsGateway
) -> None:
    # given an operator so fast its delivery report arrives before its reply to the send
    sms_gateway.report_url = live_server.url + at_hook()
    verified_channel(subscriber)

    sms = announce_bill(subscriber)
    relay_run()  # a no-op if the commit already ran the relay eagerly

    assert sms_gateway.report_errors == []
    assert [r.status_code for r in sms_gateway.report_responses] == [404]
    sms.refresh_from_db()
    assert sms.status == Message.Status.DELIVERED
    assert sms.delivered_at is not None
    report = DeliveryReport.objects.get()
    assert report.message_id == sms.pk
    assert report.applied_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_slow_worker_leaves_alone_a_message_another_worker_recorded_meanwhile(
    monkeypatch, subscriber: Subscriber, sms_gateway: FakeSmsGateway
) -> None:
    # given a pending SMS (no broker: the relay is driven by hand)
    monkeypatch.setattr(services, "_kick_relay", lambda: None)
    verified_channel(subscriber)
    sms = announce_bill(subscriber)

    def another_worker_records_it(form: dict[str, str]) -> None:
        # a re-drive handed the row to another worker, which sent and recorded it first
        try:
            Message.objects.filter(pk=sms.pk).update(
                status=Message.Status.SENT, provider="africastalking", provider_message_id="ATXid_other",
                claimed_at=None, sent_at=timezone.now(),
            )  # fmt: skip
        finally:
            connection.close()  # this runs on the gateway's thread

    sms_gateway.on_receive = another_worker_records_it

    counts = relay_run()

    assert counts["skipped"] == 1
    sms.refresh_from_db()
    assert sms.status == Message.Status.SENT
    assert sms.provider_message_id == "ATXid_other"


# --- WhatsApp Cloud ------------------------------------------------------------


@pytest.mark.django_db
def test_the_graph_api_receives_a_template_message_with_bearer_auth(
    subscriber: Subscriber, graph_api: FakeGraphApi
) -> None:
    verified_channel(subscriber, kind=ChannelKind.WHATSAPP)
    message = announce_bill(subscriber)

    relay_run()

    [request] = graph_api.requests
    assert request.method == "POST"
    assert request.path == f"/v21.0/{GRAPH_PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {GRAPH_ACCESS_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert body["messaging_product"] == "whatsapp"
    assert body["to"] == PHONE.removeprefix("+")
    assert body["type"] == "template"
    assert body["template"]["name"] == "selfcare_bill_issued"
    assert body["template"]["language"] == {"code": "fr"}
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.provider == "whatsapp_cloud"
    assert message.provider_message_id.startswith("wamid.")


@pytest.mark.django_db
def test_the_whatsapp_template_carries_the_amount_and_the_due_date(
    subscriber: Subscriber, graph_api: FakeGraphApi
) -> None:
    verified_channel(subscriber, kind=ChannelKind.WHATSAPP)
    message = announce_bill(subscriber)

    relay_run()

    [body] = graph_api.messages()
    texts = [p["text"] for c in body["template"]["components"] for p in c["parameters"]]
    assert any("59,500" in text for text in texts)
    assert Bill.objects.get(account__number=message.reference).due_date.strftime("%d/%m/%Y") in texts


@pytest.mark.django_db
def test_a_wrong_access_token_fails_the_whatsapp_message(settings, subscriber: Subscriber) -> None:
    settings.WHATSAPP_ACCESS_TOKEN = "expired"
    verified_channel(subscriber, kind=ChannelKind.WHATSAPP)
    message = announce_bill(subscriber)

    relay_run()

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert "401" in message.last_error


def wa_hook() -> str:
    return reverse("hook_whatsapp")


def wa_post(client: Client, body: bytes, *, secret: str = APP_SECRET, signature: str | None = None):
    signature = meta_signature(body, secret) if signature is None else signature
    return client.post(
        wa_hook(), data=body, content_type="application/json", headers={"X-Hub-Signature-256": signature}
    )


@pytest.mark.django_db
def test_the_subscription_handshake_echoes_the_challenge(client: Client) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}

    response = client.get(wa_hook(), query)

    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guessed", "hub.challenge": "challenge-42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "challenge-42"},
        {"hub.challenge": "challenge-42"},
    ],
)
def test_the_handshake_with_a_wrong_token_is_refused(client: Client, query: dict[str, str]) -> None:
    response = client.get(wa_hook(), query)

    assert response.status_code == 403
    assert b"challenge-42" not in response.content


@pytest.mark.django_db
def test_signed_status_reports_walk_the_message_up_to_read(client: Client, sent_whatsapp: Message) -> None:
    wamid = sent_whatsapp.provider_message_id

    assert wa_post(client, whatsapp_status_body((wamid, "sent"))).status_code == 200
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == Message.Status.SENT

    assert wa_post(client, whatsapp_status_body((wamid, "delivered"))).status_code == 200
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == Message.Status.DELIVERED
    delivered_at = sent_whatsapp.delivered_at
    assert delivered_at is not None

    response = wa_post(client, whatsapp_status_body((wamid, "read")))
    assert response.json() == {"matched": 1, "unknown": 0}
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == Message.Status.READ
    assert sent_whatsapp.read_at is not None
    assert sent_whatsapp.delivered_at == delivered_at


@pytest.mark.django_db
def test_a_late_delivered_does_not_downgrade_read(client: Client, sent_whatsapp: Message) -> None:
    wamid = sent_whatsapp.provider_message_id

    wa_post(client, whatsapp_status_body((wamid, "read")))
    response = wa_post(client, whatsapp_status_body((wamid, "delivered")))

    assert response.status_code == 200
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == Message.Status.READ
    assert sent_whatsapp.delivered_at is not None  # read implies delivered
    assert sent_whatsapp.read_at is not None


@pytest.mark.django_db
def test_a_replayed_whatsapp_report_is_stored_once(client: Client, sent_whatsapp: Message) -> None:
    body = whatsapp_status_body((sent_whatsapp.provider_message_id, "delivered"))
    wa_post(client, body)
    sent_whatsapp.refresh_from_db()
    delivered_at = sent_whatsapp.delivered_at

    response = wa_post(client, body)

    assert response.status_code == 200
    assert DeliveryReport.objects.filter(provider="whatsapp_cloud").count() == 1
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.delivered_at == delivered_at


@pytest.mark.django_db
def test_a_whatsapp_report_for_an_unknown_message_is_a_404_and_is_kept(client: Client) -> None:
    response = wa_post(client, whatsapp_status_body(("wamid.unknown", "delivered")))

    assert response.status_code == 404
    assert DeliveryReport.objects.get().provider_message_id == "wamid.unknown"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "how",
    ["wrong secret", "no header", "other body", "sha1 prefix", "empty"],
)
def test_a_badly_signed_whatsapp_report_is_refused(client: Client, sent_whatsapp: Message, how: str) -> None:
    body = whatsapp_status_body((sent_whatsapp.provider_message_id, "read"))
    signature = {
        "wrong secret": meta_signature(body, "not-the-secret"),
        "no header": "",
        "other body": meta_signature(body + b" ", APP_SECRET),
        "sha1 prefix": meta_signature(body, APP_SECRET).replace("sha256=", "sha1="),
        "empty": "sha256=",
    }[how]

    response = wa_post(client, body, signature=signature)

    assert response.status_code == 403
    assert not DeliveryReport.objects.exists()
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == Message.Status.SENT


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"entry": null}',
        b'{"entry": "x"}',
        b'{"entry": [null]}',
        b'{"entry": [{"changes": ["x"]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": 5}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": ["x"]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"status": "delivered"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"id": "wamid.1", "status": "seen"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"id": "wamid.1", "status": ["read"]}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"id": {"x": 1}, "status": "read"}]}}]}]}',
    ],
)
def test_a_malformed_whatsapp_body_is_a_400_never_a_500(body: bytes) -> None:
    client = Client(raise_request_exception=False)

    response = wa_post(client, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_payload", "invalid_status"}
    assert not DeliveryReport.objects.exists()


# --- E-mail -----------------------------------------------------------------


@pytest.mark.django_db
def test_an_email_channel_gets_the_bill_by_mail(subscriber: Subscriber) -> None:
    verified_channel(subscriber, kind=ChannelKind.EMAIL, address="alice@example.com")
    message = announce_bill(subscriber)

    relay_run()

    [email] = mail.outbox
    assert email.to == ["alice@example.com"]
    assert email.subject == "Votre facture 09/2026"
    assert message.reference in email.body
    assert "59,500" in email.body
    assert email.extra_headers["X-Selfcare-Reference"] == message.dedupe_key
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
