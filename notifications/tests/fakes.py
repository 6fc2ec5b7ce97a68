"""Fake providers: real HTTP servers on 127.0.0.1, each in a background thread.

`FakeSmsGateway` speaks Africa's Talking's messaging API and `FakeGraphApi`
WhatsApp Cloud's. Both record every request, so a test asserts what the
provider saw on the wire, and the relay (or a Celery worker in another
process) talks to them through its real httpx client.

Test modules take the fixtures at the bottom by assignment
(`sms_gateway = fakes.sms_gateway`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

SMS_API_KEY = "atsk_fake_key"
SMS_USERNAME = "selfcare"
GRAPH_PHONE_NUMBER_ID = "109876543210"
GRAPH_ACCESS_TOKEN = "EAAG-fake-token"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's pooled client expects
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Recorded(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            at=time.monotonic(),
        )
        status, payload = self.server.fake.handle(request)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: _FakeServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        self.connections.add(conn)
        return conn, address

    def close_connections(self) -> None:
        # Keep-alive clients (the relay's pooled httpx client) would otherwise
        # hold a handler thread open after the test.
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _FakeServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, request: Recorded) -> tuple[int, Any]:
        raise NotImplementedError


class FakeSmsGateway(_FakeServer):
    """Africa's Talking: POST form `username, to, message, from, clientReference`
    with an `apiKey` header; 201 and one recipient per number.

    `receipts` counts every accepted send by clientReference (the outbox dedupe
    key), repeats included; `deliveries` counts what reached a handset, which
    differs only when the gateway honours clientReference and drops a repeat.
    """

    path = "/version1/messaging"

    def __init__(self, *, api_key: str = SMS_API_KEY, username: str = SMS_USERNAME) -> None:
        super().__init__()
        self.api_key = api_key
        self.username = username
        self.receipts: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.sent: dict[str, str] = {}  # messageId -> clientReference
        self._first_id: dict[str, str] = {}
        self._fail_next = 0
        self._fail_status = 500
        self._refuse_status: int | None = None
        self._recipient_status: tuple[int, str] | None = None
        self.honour_client_reference = False
        self.delay = 0.0  # seconds per accepted send, after it is counted
        # Posted before the send is answered, as a fast operator can.
        self.report_url: str | None = None
        self.report_responses: list[httpx.Response] = []
        self.report_errors: list[BaseException] = []
        # Called with the form of each accepted send before it is answered:
        # lets a test make something happen while the sender waits.
        self.on_receive: Callable[[dict[str, str]], None] | None = None

    @property
    def send_url(self) -> str:
        return self.url + self.path

    def fail_next(self, count: int, *, status: int = 500) -> None:
        with self.lock:
            self._fail_next, self._fail_status = count, status

    def refuse(self, status: int = 401) -> None:
        with self.lock:
            self._refuse_status = status

    def reject_recipients(self, status_code: int, status: str) -> None:
        """Answer 201 but refuse the number in the recipient's statusCode."""
        with self.lock:
            self._recipient_status = (status_code, status)

    def messages(self) -> list[dict[str, str]]:
        with self.lock:
            return [r.form for r in self.requests if r.method == "POST" and r.path == self.path]

    def handle(self, request: Recorded) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(request)
            if request.method != "POST" or request.path != self.path:
                return 404, {"error": "not found"}
            if request.headers.get("apikey") != self.api_key:
                return 401, "The supplied authentication is invalid"
            if self._refuse_status is not None:
                return self._refuse_status, "Request refused"
            if self._fail_next > 0:
                self._fail_next -= 1
                return self._fail_status, "Internal Server Error"
            form = request.form
            if form.get("username") != self.username or not form.get("to") or not form.get("message"):
                return 400, "Missing username, to or message"
            number = form["to"]
            if self._recipient_status is not None:
                code, status = self._recipient_status
                return 201, _at_reply(number, code, status, "None", "")
            reference = form.get("clientReference", "")
            self.receipts[reference] += 1
            if self.honour_client_reference and reference in self._first_id:
                message_id = self._first_id[reference]
            else:
                message_id = f"ATXid_{uuid.uuid4().hex}"
                self.deliveries[reference] += 1
                self.sent[message_id] = reference
                if reference:
                    self._first_id.setdefault(reference, message_id)
            delay, report_url, on_receive = self.delay, self.report_url, self.on_receive
        if on_receive:
            on_receive(form)
        if report_url:
            try:
                response = self.post_report(report_url, message_id=message_id, status="Success")
                with self.lock:
                    self.report_responses.append(response)
            except Exception as exc:  # surfaced by the test, not swallowed
                self.report_errors.append(exc)
        if delay:
            time.sleep(delay)
        return 201, _at_reply(number, 101, "Success", "TND 0.0200", message_id)

    @staticmethod
    def post_report(url: str, *, message_id: str, status: str, **extra: str) -> httpx.Response:
        """Post a delivery report the way Africa's Talking does: a form, no signature."""
        data = {"id": message_id, "status": status, "networkCode": "60502", **extra}
        return httpx.post(url, data=data, timeout=10)


def _at_reply(number: str, code: int, status: str, cost: str, message_id: str) -> dict[str, Any]:
    accepted = 1 if code in (100, 101, 102) else 0
    return {
        "SMSMessageData": {
            "Message": f"Sent to {accepted}/1 Total Cost: {'TND 0.0200' if accepted else '0'}",
            "Recipients": [
                {"statusCode": code, "number": number, "status": status, "cost": cost, "messageId": message_id}
            ],
        }
    }


class FakeGraphApi(_FakeServer):
    """WhatsApp Cloud API: POST /{phone_number_id}/messages, Bearer token, JSON."""

    def __init__(self, *, phone_number_id: str = GRAPH_PHONE_NUMBER_ID, token: str = GRAPH_ACCESS_TOKEN) -> None:
        super().__init__()
        self.phone_number_id = phone_number_id
        self.token = token

    @property
    def graph_url(self) -> str:
        return self.url + "/v21.0"

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.json for r in self.requests if r.method == "POST"]

    def handle(self, request: Recorded) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(request)
        # The Graph URL carries a version (https://graph.facebook.com/v21.0).
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", urlsplit(request.path).path)
        if request.method != "POST" or path != f"/{self.phone_number_id}/messages":
            return 404, _graph_error(100, "Unsupported post request.")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, _graph_error(190, "Invalid OAuth access token.")
        try:
            body = request.json
            to = body["to"]
        except (ValueError, KeyError, TypeError):
            return 400, _graph_error(100, "Invalid parameter")
        if body.get("messaging_product") != "whatsapp":
            return 400, _graph_error(100, "Invalid messaging_product")
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}],
        }


def _graph_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Afake"}}


def whatsapp_status_body(*statuses: tuple[str, str], recipient: str = "21620111222") -> bytes:
    """A Cloud API status webhook body for (wamid, status) pairs, as Meta sends it."""
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA_ID",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": GRAPH_PHONE_NUMBER_ID},
                                "statuses": [
                                    {
                                        "id": wamid,
                                        "status": status,
                                        "timestamp": "1790000000",
                                        "recipient_id": recipient,
                                    }
                                    for wamid, status in statuses
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def meta_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def sms_gateway() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway() as gateway:
        yield gateway


@pytest.fixture
def graph_api() -> Iterator[FakeGraphApi]:
    with FakeGraphApi() as api:
        yield api
