"""The bank API's published description: the signature scheme, a worked example
that tests recompute (payments/tests/test_apidoc.py), and the docs page."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularSwaggerSplitView

# A real computation, not an illustration: test_apidoc signs these and must get HEX.
EXAMPLE = {
    "secret": "sk_example_3Jp9XyQ2wLr8Vd5",
    "key_id": "demo-bank",
    "timestamp": "1796216400",
    "method": "POST",
    "path": "/api/v1/payments",
    "body": (
        '{"reference":"TRX-20261202-0001","account_number":"1000000016","amount":"59.500",'
        '"currency":"TND","paid_at":"2026-12-02T14:00:00+01:00","channel":"mobile_app"}'
    ),
    "hex": "c77621e674b8cd2b21eedbf7141dac65be1ab202ef110067b2d0c49b50ebe982",
}

DESCRIPTION = f"""
Banks, wallets and agency counters report payments to Selfcare over this API.
JSON in, JSON out; no cookies, no sessions.

## Signing every request

Each request carries three headers:

| Header | Value |
|---|---|
| `X-Provider-Key` | your key id |
| `X-Timestamp` | Unix time in seconds; more than 300 s from our clock is refused (`stale_timestamp`) |
| `X-Signature` | `v1=<hex>`: HMAC-SHA256 with your secret, lowercase hex |

The HMAC is computed over these bytes, each part separated by one `\\n`:

    {{timestamp}}\\n{{METHOD}}\\n{{path with query string}}\\n{{raw body}}

The body is the exact bytes you send (empty for GET): sign the bytes, then send
those same bytes, never a re-serialisation. Several values may be sent, separated
by commas (`v1=abc…,v1=def…`); one valid value is enough. While a secret is being
rotated, both the new and the previous secret sign.

Refusals come before anything is recorded: `unknown_provider`, `stale_timestamp`
and `bad_signature` (401), `provider_inactive` (403).

## Worked example

Secret `{EXAMPLE["secret"]}`, timestamp `{EXAMPLE["timestamp"]}`, `POST {EXAMPLE["path"]}` with the body

    {EXAMPLE["body"]}

The string to sign is

    {EXAMPLE["timestamp"]}
    POST
    {EXAMPLE["path"]}
    {EXAMPLE["body"]}

(three newlines, no newline after the body) and the header is

    X-Signature: v1={EXAMPLE["hex"]}

## Payments are idempotent

`reference` is your own transaction id. Sending the same reference with the same
body again answers 200 with the first answer, unchanged; the same reference with
any other field answers 409 `reference_conflict` and changes nothing. Retry with
the same reference after a timeout or a 5xx: a payment is never applied twice.

`amount` is a decimal string with at most the currency's decimals (TND 3, XOF 0).
Money beyond what the bills ask becomes the account's credit; it is never refused.

## Errors

Always `{{"error": {{"code": "...", "message": "...", "details": {{}}}}}}`, with a stable `code`:
`unknown_provider`, `bad_signature`, `stale_timestamp`, `provider_inactive`,
`account_not_found`, `account_closed`, `bill_mismatch`, `invalid_amount`,
`currency_mismatch`, `validation_error`, `reference_conflict`, `payment_not_found`
(and `not_found`, `method_not_allowed`, `payload_too_large`, `internal_error`).
"""


class ProviderSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "payments.apis.ProviderSignatureAuthentication"
    name = ["ProviderKey", "Timestamp", "Signature"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "apiKey", "in": "header", "name": "X-Provider-Key", "description": "Your key id."},
            {"type": "apiKey", "in": "header", "name": "X-Timestamp", "description": "Unix seconds, ±300 s."},
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Signature",
                "description": "v1=HMAC-SHA256(secret, timestamp\\nMETHOD\\npath?query\\nraw body), hex.",
            },
        ]

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list]:
        return {"ProviderKey": [], "Timestamp": [], "Signature": []}


def only_the_bank_api(endpoints: list[tuple]) -> list[tuple]:
    """The schema describes the signed API, not the schema and docs views."""
    return [e for e in endpoints if e[0].startswith("/api/v1/")]


def describe(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result["info"]["description"] = DESCRIPTION
    return result


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's files, served by us, with its
    start-up script as a separate file: the page needs no inline script or
    style, so it lives under the strict Content-Security-Policy unexempted."""

    template_name = "payments/api_docs.html"
