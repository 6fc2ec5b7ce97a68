"""Provider callbacks: delivery reports from the SMS gateway and WhatsApp.

Each checks its credential before touching the database, then checks the whole
input before storing any of it: a malformed, oversized or unstorable report is
a 4xx with a JSON reason and leaves no row behind. Every authentic report is
stored (reports.delivery_report_record) so none that matches a message is lost;
those for unknown messages are capped (SELFCARE_UNMATCHED_REPORTS_MAX).
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from core.hostile import HostileInput, json_body_parse, text_is_storable

from .channels import africastalking, whatsapp_cloud
from .reports import ReportInboxFull, delivery_report_record

# A provider's message id: printable ASCII, no spaces (ATXid_…, wamid.HBgL…).
PROVIDER_MESSAGE_ID = re.compile(r"[!-~]{1,128}")
# What one stored report may weigh: a real one is a few hundred bytes.
REPORT_MAX_FIELDS = 32
REPORT_MAX_BYTES = 8_192


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "detail": detail}}, status=status)


def _not_configured(setting: str) -> JsonResponse:
    return _error(503, "not_configured", f"This hook is not configured ({setting} is not set).")


def _inbox_full(exc: ReportInboxFull) -> JsonResponse:
    return _error(503, exc.code, exc.message)


@csrf_exempt
@require_POST
def africastalking_report(request: HttpRequest, token: str) -> HttpResponse:
    expected = settings.AFRICASTALKING_CALLBACK_TOKEN
    if not expected:  # only with DEBUG on: production refuses to start without it
        return _not_configured("AFRICASTALKING_CALLBACK_TOKEN")
    if not constant_time_compare(token, expected):
        return _error(403, "bad_token", "Unknown callback token.")
    message_id = request.POST.get("id", "").strip()
    raw_status = request.POST.get("status", "").strip()
    if not PROVIDER_MESSAGE_ID.fullmatch(message_id) or raw_status not in africastalking.REPORT_STATUS:
        return _error(
            400,
            "invalid_report",
            "Expected form fields id and status (Success, Sent, Buffered, Rejected, Failed, Expired).",
        )
    payload = {k: v for k, v in request.POST.items()}
    if not _storable_report(payload):
        return _error(400, "invalid_report", "The report is too large or holds characters that cannot be stored.")
    try:
        message = delivery_report_record(
            provider="africastalking",
            provider_message_id=message_id,
            raw_status=raw_status,
            status=africastalking.REPORT_STATUS[raw_status],
            payload=payload,
        )
    except ReportInboxFull as exc:
        return _inbox_full(exc)
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

    if not settings.WHATSAPP_APP_SECRET:  # as above
        return _not_configured("WHATSAPP_APP_SECRET")
    if not whatsapp_cloud.signature_valid(request.body, request.headers.get("X-Hub-Signature-256")):
        return _error(403, "bad_signature", "X-Hub-Signature-256 does not match the body.")
    statuses = _whatsapp_statuses(request.body)
    if statuses is None:
        return _error(400, "invalid_payload", "Expected a WhatsApp Cloud API webhook body.")
    if len(statuses) > settings.SELFCARE_HOOK_MAX_REPORTS:
        return _error(413, "too_many_reports", f"At most {settings.SELFCARE_HOOK_MAX_REPORTS} statuses in one call.")
    # Every status checked before any is stored: a bad fifth one leaves no four behind.
    # Each field is type-checked: a signed body can still hold a list where a string belongs.
    for status in statuses:
        if not (
            isinstance(status, dict)
            and isinstance(status.get("status"), str)
            and status["status"] in whatsapp_cloud.STATUS
            and isinstance(status.get("id"), str)
            and PROVIDER_MESSAGE_ID.fullmatch(status["id"])
            and _storable_report(status)
        ):
            return _error(400, "invalid_status", "Each status needs an id and one of sent, delivered, read, failed.")
    matched, unknown = 0, 0
    for status in statuses:
        try:
            message = delivery_report_record(
                provider="whatsapp_cloud",
                provider_message_id=status["id"],
                raw_status=status["status"],
                status=whatsapp_cloud.STATUS[status["status"]],
                payload=status,
            )
        except ReportInboxFull as exc:
            # What matched is applied; the provider's retry replays it harmlessly (stored once).
            return _inbox_full(exc)
        matched, unknown = (matched + 1, unknown) if message else (matched, unknown + 1)
    if statuses and not matched:
        return _error(404, "unknown_message", "No message with these ids yet; the reports are kept.")
    return JsonResponse({"matched": matched, "unknown": unknown})


def _whatsapp_statuses(body: bytes) -> list | None:
    """The `statuses` of a Cloud API webhook body, or None when it is not one.
    Every level is type-checked: a signed body can still be malformed."""
    try:
        payload = json_body_parse(body)
    except HostileInput:
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


def _storable_report(payload: dict) -> bool:
    """Small enough to keep as received (strings were checked when parsed or by the middleware)."""
    if len(payload) > REPORT_MAX_FIELDS:
        return False
    if not all(text_is_storable(key) and (not isinstance(v, str) or text_is_storable(v)) for key, v in payload.items()):
        return False
    return len(json.dumps(payload, ensure_ascii=False).encode()) <= REPORT_MAX_BYTES
