"""A fake Konnect gateway: a real HTTP server on loopback, for the demo and the tests.

It speaks the part of Konnect's API v2 that Selfcare uses (see konnect.py) and
hosts the payer's page:

- `POST /api/v2/payments/init-payment` (header `x-api-key`): checks the key and
  the body as Konnect documents it, keeps the payment, answers `{payUrl, paymentRef}`;
- `GET /api/v2/payments/{paymentRef}`: `{payment: {...}}` with its status
  ("pending", "completed", or "expired" once its lifespan is over);
- `GET /pay?payment_ref=…`: the payer's page, with "Pay" and "Cancel";
- `POST /pay`: "Pay" completes the payment, calls the merchant's webhook
  (`GET {webhook}?payment_ref=…`, from another thread, as a gateway does after
  the fact) and redirects to `successUrl`; "Cancel" redirects to `failUrl` and
  leaves the payment pending (Konnect has no "cancelled").

No money moves and nothing is signed. Like the sandbox bank, it imports nothing
of Selfcare: it knows it only through the addresses it is given. Tests drive it
directly too (`pay`, `answer_with`, `unavailable`). `manage.py konnect_fake`
serves it on 127.0.0.1:8011 for `make run`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

TOKENS = {"TND": 3, "EUR": 2, "USD": 2}  # the currencies Konnect takes, and their minor-unit exponent
PAYMENT_METHODS = {"wallet", "bank_card", "e-DINAR"}
MAX_BODY = 64 * 1024
WEBHOOK_TIMEOUT = 10.0
_PAY_PATH = "/pay"
_STATUS_PATH = re.compile(r"/api/v2/payments/([A-Za-z0-9_-]{1,128})")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 1000:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _body_errors(body: Any, wallet_id: str | None) -> list[dict[str, str]]:
    """What Konnect would refuse in an init-payment body (field by field)."""
    if not isinstance(body, dict):
        return [{"field": "", "message": "The body must be a JSON object."}]
    errors = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    wallet = body.get("receiverWalletId")
    if not isinstance(wallet, str) or not wallet:
        bad("receiverWalletId", "required")
    elif wallet_id and wallet != wallet_id:
        bad("receiverWalletId", "unknown wallet")
    if body.get("token") not in TOKENS:
        bad("token", "one of " + ", ".join(sorted(TOKENS)))
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        bad("amount", "a positive whole number of millimes (or cents)")
    if body.get("type", "immediate") not in ("immediate", "partial"):
        bad("type", "immediate or partial")
    methods = body.get("acceptedPaymentMethods", sorted(PAYMENT_METHODS))
    if not isinstance(methods, list) or not methods or not set(methods) <= PAYMENT_METHODS:
        bad("acceptedPaymentMethods", "a list of " + ", ".join(sorted(PAYMENT_METHODS)))
    lifespan = body.get("lifespan", 10)
    if isinstance(lifespan, bool) or not isinstance(lifespan, int) or lifespan <= 0:
        bad("lifespan", "a positive number of minutes")
    for flag in ("checkoutForm", "addPaymentFeesToAmount"):
        if not isinstance(body.get(flag, False), bool):
            bad(flag, "true or false")
    for text in ("description", "orderId"):
        if not isinstance(body.get(text, ""), str) or len(body.get(text, "")) > 255:
            bad(text, "a string of at most 255 characters")
    for url in ("webhook", "successUrl", "failUrl"):
        if url in body and not _is_url(body[url]):
            bad(url, "an http(s) address")
    if body.get("theme", "light") not in ("light", "dark"):
        bad("theme", "light or dark")
    return errors


class KonnectFake:
    """The fake gateway and its state; `with KonnectFake(...) as fake:` serves it
    from a background thread, `serve_forever()` from the calling one."""

    def __init__(self, *, api_key: str, wallet_id: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        self.wallet_id = wallet_id
        self.lock = threading.Lock()
        self.payments: dict[str, dict[str, Any]] = {}
        # (method, path) of every request, in order.
        self.requests: list[tuple[str, str]] = []
        # (url, HTTP status or the error) of every webhook call made.
        self.webhook_calls: list[tuple[str, int | str]] = []
        # The API (not the payer's page) answers this instead, while set: a test's
        # outage (503) or a broken answer (200 with a body that is not JSON).
        self.answer_with: tuple[int, bytes] | None = None
        self.verbose = False
        self._webhook_threads: list[threading.Thread] = []
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- Running ----------------------------------------------------------

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.wait_webhooks()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def unavailable(self) -> bool:
        return self.answer_with is not None and self.answer_with[0] == HTTPStatus.SERVICE_UNAVAILABLE

    @unavailable.setter
    def unavailable(self, down: bool) -> None:
        self.answer_with = (503, b'{"errors":[{"message":"Service unavailable"}]}') if down else None

    # --- What the payer does ----------------------------------------------

    def status(self, payment_ref: str) -> str:
        """ "pending", "completed", or "expired" once the lifespan is over unpaid."""
        payment = self.payments[payment_ref]
        if payment["status"] == "pending" and _now() >= payment["expires_at"]:
            return "expired"
        return payment["status"]

    def pay(self, payment_ref: str, *, amount: int | None = None, notify: bool = True) -> bool:
        """The payer pays (the "Pay" button); `amount` makes the gateway report
        another amount than asked. Calls the webhook unless `notify` is False.
        False if the payment was not payable (unknown, expired, already paid)."""
        with self.lock:
            payment = self.payments.get(payment_ref)
            if payment is None or self.status(payment_ref) != "pending":
                return False
            paid = payment["amount"] if amount is None else amount
            payment.update(status="completed", amount=paid, updated_at=_now())
            payment["transactions"].append(
                {
                    "id": secrets.token_hex(12),
                    "type": "payment",
                    "method": "wallet",
                    "status": "success",
                    "token": payment["token"],
                    "amount": paid,
                    "amountAfterFee": paid,
                    "from": "fake wallet 20000001",
                }
            )
            webhook = payment["webhook"]
        if notify and webhook:
            self.notify(payment_ref)
        return True

    def notify(self, payment_ref: str) -> threading.Thread:
        """Call the merchant's webhook for this payment, from another thread."""
        url = _with_query(self.payments[payment_ref]["webhook"], payment_ref=payment_ref)
        thread = threading.Thread(target=self._call_webhook, args=(url,), daemon=True)
        with self.lock:
            self._webhook_threads.append(thread)
        thread.start()
        return thread

    def wait_webhooks(self, timeout: float = 30.0) -> None:
        with self.lock:
            threads = list(self._webhook_threads)
        for thread in threads:
            thread.join(timeout=timeout)

    def _call_webhook(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310 - http(s), checked at init
                result: int | str = response.status
        except urllib.error.HTTPError as error:
            result = error.code
        except OSError as error:
            result = f"unreachable: {error}"
        with self.lock:
            self.webhook_calls.append((url, result))

    # --- The API ----------------------------------------------------------

    def init_payment(self, body: dict[str, Any]) -> dict[str, str]:
        payment_ref = secrets.token_hex(12)  # a 24-hex id, as Konnect's
        created = _now()
        with self.lock:
            self.payments[payment_ref] = {
                "status": "pending",
                "amount": body["amount"],
                "token": body["token"],
                "type": body.get("type", "immediate"),
                "description": body.get("description", ""),
                "orderId": body.get("orderId", ""),
                "acceptedPaymentMethods": body.get("acceptedPaymentMethods", sorted(PAYMENT_METHODS)),
                "webhook": body.get("webhook", ""),
                "successUrl": body.get("successUrl", ""),
                "failUrl": body.get("failUrl", ""),
                "theme": body.get("theme", "light"),
                "transactions": [],
                "request": dict(body),  # as received, for tests to read
                "created_at": created,
                "updated_at": created,
                "expires_at": created + dt.timedelta(minutes=body.get("lifespan", 10)),
            }
        return {"payUrl": self.pay_url(payment_ref), "paymentRef": payment_ref}

    def pay_url(self, payment_ref: str) -> str:
        theme = self.payments[payment_ref]["theme"]
        return f"{self.url}{_PAY_PATH}?{urlencode({'payment_ref': payment_ref, 'theme': theme})}"

    def payment_data(self, payment_ref: str) -> dict[str, Any]:
        with self.lock:
            p = self.payments[payment_ref]
            transactions = [dict(t) for t in p["transactions"]]
            return {
                "payment": {
                    "id": payment_ref,
                    "status": self.status(payment_ref),
                    "amount": p["amount"],
                    "token": p["token"],
                    "type": p["type"],
                    "orderId": p["orderId"],
                    "description": p["description"],
                    "acceptedPaymentMethods": list(p["acceptedPaymentMethods"]),
                    "webhook": p["webhook"],
                    "link": self.pay_url(payment_ref),
                    "transactions": transactions,
                    "successfulTransactions": sum(t["status"] == "success" for t in transactions),
                    "failedTransactions": sum(t["status"] != "success" for t in transactions),
                    "createdAt": _iso(p["created_at"]),
                    "updatedAt": _iso(p["updated_at"]),
                    "expirationDate": _iso(p["expires_at"]),
                }
            }


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    server_version = "KonnectFake/1.0"

    @property
    def fake(self) -> KonnectFake:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        if self.fake.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        path = urlsplit(self.path).path
        with self.fake.lock:
            self.fake.requests.append((self.command, path))
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._json(413, {"errors": [{"message": "Body too large"}]})
        body = self.rfile.read(length) if length else b""
        if path.startswith("/api/"):
            return self._api(path, body)
        if path == _PAY_PATH and self.command == "GET":
            return self._pay_page(parse_qs(urlsplit(self.path).query).get("payment_ref", [""])[0])
        if path == _PAY_PATH and self.command == "POST":
            return self._pay_form(parse_qs(body.decode("utf-8", "replace")))
        return self._json(404, {"errors": [{"message": "Not found"}]})

    # --- API ------------------------------------------------------------

    def _api(self, path: str, body: bytes) -> None:
        override = self.fake.answer_with
        if override is not None:
            return self._send(override[0], override[1], "application/json")
        if self.headers.get("x-api-key") != self.fake.api_key:
            return self._json(401, {"errors": [{"message": "Invalid API key"}]})
        if path == "/api/v2/payments/init-payment" and self.command == "POST":
            try:
                data = json.loads(body)
            except ValueError:
                return self._json(400, {"errors": [{"field": "", "message": "The body is not JSON."}]})
            errors = _body_errors(data, self.fake.wallet_id)
            if errors:
                return self._json(400, {"errors": errors})
            return self._json(200, self.fake.init_payment(data))
        match = _STATUS_PATH.fullmatch(path)
        if match and self.command == "GET":
            if match.group(1) not in self.fake.payments:
                return self._json(404, {"errors": [{"message": "Payment not found"}]})
            return self._json(200, self.fake.payment_data(match.group(1)))
        return self._json(404, {"errors": [{"message": "Not found"}]})

    # --- The payer's page -----------------------------------------------

    def _pay_page(self, payment_ref: str, *, note: str = "") -> None:
        payment = self.fake.payments.get(payment_ref)
        if payment is None:
            return self._html(404, "<p class='note'>This payment link is not valid.</p>")
        status = self.fake.status(payment_ref)
        exponent = TOKENS[payment["token"]]
        amount = f"{Decimal(payment['amount']).scaleb(-exponent):f} {payment['token']}"
        e = html.escape
        if status == "completed":
            action = f"<p class='done'>Paid.</p><p><a href='{e(payment['successUrl'])}'>Back to the merchant</a></p>"
        elif status == "expired":
            action = f"<p class='note'>This payment has expired.</p><p><a href='{e(payment['failUrl'])}'>Back to the merchant</a></p>"
        else:
            action = (
                f"<form method='post' action='{_PAY_PATH}'>"
                f"<input type='hidden' name='payment_ref' value='{e(payment_ref)}'>"
                "<button type='submit' name='action' value='pay' class='pay' data-testid='konnect-pay'>Pay</button>"
                "<button type='submit' name='action' value='cancel' class='cancel' data-testid='konnect-cancel'>Cancel</button>"
                "</form>"
            )
        self._html(
            200,
            f"<p class='note'>A fake of Konnect's payment page: no money moves.</p>{note}"
            f"<p class='amount' data-testid='konnect-amount'>{e(amount)}</p>"
            f"<p>{e(payment['description'])}</p>"
            f"<p class='note'>Order <code>{e(payment['orderId'])}</code> · valid until "
            f"{payment['expires_at']:%H:%M} UTC</p>{action}",
        )

    def _pay_form(self, form: dict[str, list[str]]) -> None:
        payment_ref = form.get("payment_ref", [""])[0]
        payment = self.fake.payments.get(payment_ref)
        if payment is None:
            return self._html(404, "<p class='note'>This payment link is not valid.</p>")
        if form.get("action", [""])[0] == "cancel":
            return self._redirect(_with_query(payment["failUrl"], payment_ref=payment_ref))
        # A second click on a paid payment just goes back, as the first did.
        if self.fake.pay(payment_ref) or self.fake.status(payment_ref) == "completed":
            return self._redirect(_with_query(payment["successUrl"], payment_ref=payment_ref))
        return self._pay_page(payment_ref)

    # --- Answers --------------------------------------------------------

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _html(self, status: int, content: str) -> None:
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Konnect (fake)</title><style>{_CSS}</style></head>"
            f"<body><main><h1>Konnect <small>(fake)</small></h1>{content}</main></body></html>"
        )
        self._send(status, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


_CSS = (
    "body{font-family:system-ui,sans-serif;background:#f3f5f9;margin:0;color:#1d2433}"
    "main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:12px;padding:1.5rem 2rem;"
    "box-shadow:0 2px 12px rgba(0,0,0,.08)}"
    "h1{font-size:1.3rem;color:#0d5bd7}h1 small{color:#6b7385;font-weight:normal}"
    ".amount{font-size:2rem;font-weight:600;margin:.5rem 0}.note{color:#6b7385;font-size:.9rem}"
    ".done{color:#17803d;font-weight:600}form{display:flex;gap:.75rem;margin-top:1.5rem}"
    "button{flex:1;font-size:1rem;padding:.7rem;border-radius:8px;border:1px solid #c6ccd8;background:#fff;cursor:pointer}"
    "button.pay{background:#0d5bd7;border-color:#0d5bd7;color:#fff}"
)
