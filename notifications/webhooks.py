"""Provider callbacks: delivery reports from the SMS gateway and WhatsApp.

Each checks its credential before touching the database, answers 4xx with a
JSON reason for anything malformed or unknown, and stores every authentic
report (services.delivery_report_record) so none that matches a message is lost.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from .channels import africastalking, whatsapp_cloud
from .reports import delivery_report_record


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "detail": detail}}, status=status)


@csrf_exempt
@require_POST
def africastalking_report(request: HttpRequest, token: str) -> HttpResponse:
    expected = settings.AFRICASTALKING_CALLBACK_TOKEN
    if not expected or not constant_time_compare(token, expected):
        return _error(403, "bad_token", "Unknown callback token.")
    message_id = request.POST.get("id", "").strip()
    raw_status = request.POST.get("status", "").strip()
    if not message_id or raw_status not in africastalking.REPORT_STATUS:
        return _error(
            400,
            "invalid_report",
            "Expected form fields id and status (Success, Sent, Buffered, Rejected, Failed, Expired).",
        )
    message = delivery_report_record(
        provider="africastalking",
        provider_message_id=message_id[:128],
        raw_status=raw_status,
        status=africastalking.REPORT_STATUS[raw_status],
        payload={k: v for k, v in request.POST.items()},
    )
    if message is None:
        return _error(404, "unknown_message", "No message with this id yet; the report is kept.")
    return JsonResponse({"status": message.status})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        # Meta's subscription handshake: echo the challenge if the token matches.
        mode = request.GET.get("hub.mode")
        token = request.GET.get("hub.verify_token", "")
        challenge = request.GET.get("hub.challenge", "")
        expected = settings.WHATSAPP_VERIFY_TOKEN
        if mode == "subscribe" and expected and constant_time_compare(token, expected):
            return HttpResponse(challenge, content_type="text/plain")
        return _error(403, "bad_verify_token", "Verification token does not match.")

    if not whatsapp_cloud.signature_valid(request.body, request.headers.get("X-Hub-Signature-256")):
        return _error(403, "bad_signature", "X-Hub-Signature-256 does not match the body.")
    statuses = _whatsapp_statuses(request.body)
    if statuses is None:
        return _error(400, "invalid_payload", "Expected a WhatsApp Cloud API webhook body.")
    matched, unknown = 0, 0
    for status in statuses:
        # Every field type-checked first: a signed body can still hold a list where a string belongs.
        if not (
            isinstance(status, dict)
            and isinstance(status.get("status"), str)
            and status["status"] in whatsapp_cloud.STATUS
            and isinstance(status.get("id"), str)
            and status["id"]
        ):
            return _error(400, "invalid_status", "Each status needs an id and one of sent, delivered, read, failed.")
        message = delivery_report_record(
            provider="whatsapp_cloud",
            provider_message_id=str(status["id"])[:128],
            raw_status=status["status"],
            status=whatsapp_cloud.STATUS[status["status"]],
            payload=status,
        )
        matched, unknown = (matched + 1, unknown) if message else (matched, unknown + 1)
    if statuses and not matched:
        return _error(404, "unknown_message", "No message with these ids yet; the reports are kept.")
    return JsonResponse({"matched": matched, "unknown": unknown})


def _whatsapp_statuses(body: bytes) -> list | None:
    """The `statuses` of a Cloud API webhook body, or None when it is not one.
    Every level is type-checked: a signed body can still be malformed."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    entries = payload.get("entry") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return None
    statuses: list = []
    for entry in entries:
        changes = entry.get("changes", []) if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            return None
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                return None
            found = value.get("statuses", [])
            if not isinstance(found, list):
                return None
            statuses += found
    return statuses
