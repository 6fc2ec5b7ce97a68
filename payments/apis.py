"""The bank and wallet API (signed REST, JSON only): README "Bank and wallet API".

Each view is thin: the signature is checked by `ProviderSignatureAuthentication`
before any database write, the request is written to the inbox, its body is
checked for shape by a serializer, and one service or selector answers.
Every error, whatever raised it, leaves as `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import traceback
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone, translation
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError, error_body
from core.sql import columns, fetch_all, insert_returning, instance_from_row

from .crypto import SecretUnreadable, secret_open
from .models import KEY_ID_REGEX, REFERENCE_REGEX, ApiInbox, Provider
from .selectors import account_due, payment_data, payment_get, payment_reference_used
from .services import ReferenceConflict, amount_parse, currency_check, payment_apply, payment_reverse
from .signing import signature_matches

logger = logging.getLogger(__name__)

# HTTP status of each domain error code (core.exceptions.ApplicationError.code).
STATUS_OF_CODE = {
    "unknown_provider": 401,
    "bad_signature": 401,
    "stale_timestamp": 401,
    "provider_inactive": 403,
    "account_not_found": 404,
    "payment_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "reference_conflict": 409,
    "account_closed": 422,
    "bill_mismatch": 422,
    "currency_mismatch": 422,
    "invalid_amount": 400,
    "validation_error": 400,
    "payload_too_large": 413,
}
# Headers kept in the inbox: enough to replay and debug a request, no cookies.
INBOX_HEADERS = ("X-Provider-Key", "X-Timestamp", "X-Signature", "Content-Type", "User-Agent", "X-Request-Id")
MAX_JSON_DEPTH = 4
_KEY_ID = re.compile(KEY_ID_REGEX)
_REFERENCE = re.compile(REFERENCE_REGEX)
_ACCOUNT_NUMBER = re.compile(r"^[0-9]{10}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class ApiError(ApplicationError):
    """A refusal of the API layer itself (signature, shape), with a stable code."""


# --- Authentication --------------------------------------------------------


class ProviderPrincipal:
    """The caller of a signed request: a provider, not a user."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, provider: Provider) -> None:
        self.provider = provider


def _signing_path(request: HttpRequest) -> str:
    return request.get_full_path()


@cache
def _provider_sql() -> str:
    return f"SELECT {columns(Provider, 'p')} FROM {Provider._meta.db_table} p WHERE p.key_id = %s"


def _secret_key_material() -> str:
    return settings.PAYMENTS_SECRET_KEY or settings.SECRET_KEY


@lru_cache(maxsize=256)
def _secret_open(sealed: str, key_id: str, material: str) -> str:
    """A stored secret, opened once per process (AES-GCM, then kept): the row
    itself is read at every request, so a rotated secret is a new `sealed` value
    and opens anew; `material` keys the cache on the server key it opened with."""
    return secret_open(sealed, key_id=key_id)


class ProviderSignatureAuthentication(BaseAuthentication):
    """X-Provider-Key, X-Timestamp and X-Signature (payments.signing), checked on the raw body.

    Nothing is written before this passes: an unknown key costs one read, a
    stale timestamp or a bad signature none.
    """

    def authenticate(self, request: Request) -> tuple[ProviderPrincipal, Provider]:
        raw: HttpRequest = request._request
        key_id = raw.headers.get("X-Provider-Key", "")
        timestamp = raw.headers.get("X-Timestamp", "")
        header = raw.headers.get("X-Signature", "")
        if not _KEY_ID.match(key_id):
            raise ApiError("X-Provider-Key names no provider.", code="unknown_provider")
        if not _TIMESTAMP.match(timestamp):
            raise ApiError("X-Timestamp must be Unix seconds.", code="stale_timestamp")
        skew = int(timestamp) - int(time.time())
        if abs(skew) > settings.PAYMENTS_SIGNATURE_TOLERANCE:
            raise ApiError(
                "X-Timestamp is too far from the server clock.",
                code="stale_timestamp",
                extra={"server_time": int(time.time()), "tolerance_seconds": settings.PAYMENTS_SIGNATURE_TOLERANCE},
            )
        # Read at every request, never cached: a deactivation or a new secret takes
        # effect at once. Plain SQL: the ORM cost more than the lookup itself.
        rows = fetch_all(_provider_sql(), [key_id])
        if not rows:
            raise ApiError("X-Provider-Key names no provider.", code="unknown_provider")
        provider = instance_from_row(Provider, rows[0])
        try:
            secrets = [
                _secret_open(s, key_id, _secret_key_material())
                for s in (provider.secret_sealed, provider.previous_secret_sealed)
                if s
            ]
        except SecretUnreadable:
            logger.error("The signing secret of provider %s does not decrypt: is PAYMENTS_SECRET_KEY right?", key_id)
            raise
        body = raw.body
        if not signature_matches(
            secrets=secrets,
            header=header,
            timestamp=timestamp,
            method=raw.method or "",
            path=_signing_path(raw),
            body=body,
        ):
            raise ApiError("X-Signature does not match this request.", code="bad_signature")
        if not provider.is_active:
            raise ApiError("This provider is not active.", code="provider_inactive")
        return ProviderPrincipal(provider), provider

    def authenticate_header(self, request: Request) -> str:
        return 'Signature realm="selfcare", scheme="v1"'


# --- Bodies -------------------------------------------------------------------


def _clean(value: Any, depth: int = 0) -> Any:
    """Refuse what PostgreSQL or the services cannot hold: NUL characters, lone
    surrogates, deep nesting. The contract's bodies are flat objects."""
    if depth > MAX_JSON_DEPTH:
        raise ApiError("The body is nested too deeply.", code="validation_error")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError("The body contains a NUL character.", code="validation_error")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError("The body contains an invalid character.", code="validation_error") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _clean(key, depth + 1)
            _clean(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _clean(item, depth + 1)
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a validation_error: never a 500."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError("The body is not valid JSON (UTF-8).", code="validation_error") from None
    if not isinstance(data, dict):
        raise ApiError("The body must be a JSON object.", code="validation_error")
    return _clean(data)


class OffsetDateTimeField(serializers.Field):
    """ISO 8601 with a UTC offset ("2026-11-28T10:15:00+01:00" or "...Z"): a
    payment time without one is ambiguous by hours."""

    default_error_messages = {"invalid": "Use ISO 8601 with a UTC offset, e.g. 2026-11-28T10:15:00+01:00."}

    def to_internal_value(self, data: Any) -> dt.datetime:
        if not isinstance(data, str) or len(data) > 40 or "T" not in data:
            self.fail("invalid")
        try:
            value = dt.datetime.fromisoformat(data)
        except ValueError:
            self.fail("invalid")
        if value.tzinfo is None or value.utcoffset() is None:
            self.fail("invalid")
        return value

    def to_representation(self, value: dt.datetime) -> str:
        return value.isoformat()


class AmountField(serializers.Field):
    """Passed through as received: its rules depend on the currency (services.amount_parse)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # null is a bad amount (invalid_amount), not a missing field.
        return (False, data) if data is None else super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> Any:
        return data


class PaymentIn(serializers.Serializer):
    # The bank's own id, kept as sent (a trimmed one would not match its records):
    # no trimming, and `\Z`, since Python's `$` also matches before a final newline.
    reference = serializers.RegexField(REFERENCE_REGEX.removesuffix("$") + r"\Z", max_length=64, trim_whitespace=False)
    account_number = serializers.CharField(max_length=32)
    bill_number = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    amount = AmountField()
    currency = serializers.CharField(min_length=3, max_length=3)
    paid_at = OffsetDateTimeField()
    channel = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


class ReversalIn(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


def _valid(serializer_class: type[serializers.Serializer], data: dict[str, Any]) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ApiError("The request does not match the contract.", code="validation_error", extra=serializer.errors)
    return serializer.validated_data


# --- Errors -------------------------------------------------------------------


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every failure as the one JSON error shape; a 500 only for a true server fault."""
    if isinstance(exc, ApplicationError):
        code, message, details = exc.code, exc.message, exc.extra
    elif isinstance(exc, exceptions.MethodNotAllowed):
        code, message, details = "method_not_allowed", str(exc.detail), {}
    elif isinstance(exc, Http404 | exceptions.NotFound):
        code, message, details = "not_found", "Not found.", {}
    elif isinstance(exc, RequestDataTooBig):
        code, message, details = "payload_too_large", "The body is too large.", {}
    elif isinstance(exc, exceptions.APIException) and exc.status_code < 500:
        code, message, details = "validation_error", str(exc.detail), {}
    else:
        logger.exception("Bank API fault", exc_info=exc)
        view = context.get("view")
        if view is not None:
            view.inbox_error = "".join(traceback.format_exception(exc))
        return Response(
            error_body(code="internal_error", message="Server fault; retry with the same reference."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response = Response(error_body(code=code, message=message, details=details), status=STATUS_OF_CODE.get(code, 400))
    if response.status_code == 401:
        response["WWW-Authenticate"] = ProviderSignatureAuthentication().authenticate_header(context.get("request"))
    return response


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/: JSON too, never Django's HTML 404 page."""
    return JsonResponse(error_body(code="not_found", message="No such endpoint."), status=404)


# --- Views --------------------------------------------------------------------


_INBOX_CLOSE_SQL = (
    f"UPDATE {ApiInbox._meta.db_table} SET status = %s, response_status = %s, response_body = %s, error = %s, "
    "finished_at = %s WHERE id = %s"
)
_RESPONSE_BODY = ApiInbox._meta.get_field("response_body")
_FINISHED_AT = ApiInbox._meta.get_field("finished_at")
_INBOX_METHOD_LENGTH = ApiInbox._meta.get_field("method").max_length


class ProviderAPIView(APIView):
    """A signed endpoint: authenticated by signature, written to the inbox
    before it runs, the inbox row closed with the answer after."""

    authentication_classes = [ProviderSignatureAuthentication]
    permission_classes: list = []
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    inbox: ApiInbox | None = None
    inbox_error = ""

    def get_exception_handler(self):
        return api_exception_handler

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        # One language in every answer, DRF's messages included: the server's default
        # (French) would put "Ce champ est obligatoire." beside our English. Messages
        # to subscribers are rendered in each channel's own language regardless.
        with translation.override("en"):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # the signature, via request.user
        raw = request._request
        inbox = ApiInbox(
            provider=request.auth,
            # Any token is a method to HTTP (MKCALENDAR...): cut to the column, as the
            # path and headers are, so an odd one is a 405, not a fault.
            method=(raw.method or "")[:_INBOX_METHOD_LENGTH],
            path=raw.get_full_path()[:2000],
            headers={name: raw.headers[name][:500] for name in INBOX_HEADERS if name in raw.headers},
            body=raw.body,
        )
        # Committed on its own (autocommit) before the request is processed: kept whatever happens next.
        insert_returning(ApiInbox, [inbox])
        self.inbox = inbox

    def perform_authentication(self, request: Request) -> None:
        request.user  # noqa: B018 - runs the authenticator now, before anything is written

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.inbox is not None:
            ok = response.status_code < 400
            error = self.inbox_error
            if not ok and not error and isinstance(response.data, dict) and "error" in response.data:
                error = f"{response.data['error']['code']}: {response.data['error']['message']}"
            with connection.cursor() as cursor:
                cursor.execute(
                    _INBOX_CLOSE_SQL,
                    [
                        str(ApiInbox.Status.SUCCEEDED if ok else ApiInbox.Status.FAILED),
                        response.status_code,
                        _RESPONSE_BODY.get_db_prep_save(response.data, connection),
                        error,
                        _FINISHED_AT.get_db_prep_save(timezone.now(), connection),
                        self.inbox.pk,
                    ],
                )
        return response

    @property
    def provider(self) -> Provider:
        return self.request.auth


# The schema's shapes (drf-spectacular): what a bank's client generator reads.
ErrorOut = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.ChoiceField(choices=sorted({*STATUS_OF_CODE, "internal_error"})),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)
AllocationOut = inline_serializer(
    "Allocation", {"bill_number": serializers.CharField(), "amount": serializers.CharField()}, many=True
)
PaymentOut = inline_serializer(
    "Payment",
    {
        "reference": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["applied", "reversed"]),
        "receipt_number": serializers.CharField(),
        "account_number": serializers.CharField(),
        "amount": serializers.CharField(help_text="Decimal string with the currency's decimals."),
        "currency": serializers.CharField(),
        "allocations": AllocationOut,
        "credit": serializers.CharField(help_text="The part of this payment added to the account's credit."),
    },
)
DueOut = inline_serializer(
    "AccountDue",
    {
        "account_number": serializers.CharField(),
        "customer_name": serializers.CharField(help_text="Masked: M*** B***."),
        "currency": serializers.CharField(),
        "total_due": serializers.CharField(),
        "bills": inline_serializer(
            "DueBill",
            {
                "bill_number": serializers.CharField(),
                "period": serializers.CharField(help_text="YYYY-MM"),
                "due_date": serializers.DateField(),
                "amount_due": serializers.CharField(),
            },
            many=True,
        ),
    },
)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(ErrorOut, description="An error (see its `code`).")
        for code in (400, 401, 403, 413, 500, *codes)
    }


class AccountDueApi(ProviderAPIView):
    @extend_schema(
        operation_id="account_due",
        description="The open bills of an account, oldest first, and their total. The customer's name is masked.",
        summary="What an account owes",
        responses={200: DueOut, **_errors(404, 405)},
    )
    def get(self, request: Request, account_number: str) -> Response:
        data = account_due(account_number=account_number) if _ACCOUNT_NUMBER.match(account_number) else None
        if data is None:
            raise ApiError("No account has this number.", code="account_not_found")
        return Response(data)


class PaymentCreateApi(ProviderAPIView):
    @extend_schema(
        operation_id="payment_create",
        description="Apply a payment once per `reference`; see the description above for replays and conflicts.",
        summary="Report a payment (idempotent by reference)",
        # By media type: these views have no parser (they read the raw, signed
        # bytes), and drf-spectacular derives a body's media types from parsers.
        request={
            "application/json": inline_serializer(
                "PaymentCreate",
                {
                    "reference": serializers.RegexField(
                        REFERENCE_REGEX, max_length=64, help_text="Your transaction id."
                    ),
                    "account_number": serializers.CharField(max_length=32),
                    "bill_number": serializers.CharField(required=False, max_length=32),
                    "amount": serializers.RegexField(r"^[0-9]+(\.[0-9]+)?$", help_text='Decimal string: "12.500".'),
                    "currency": serializers.CharField(min_length=3, max_length=3),
                    "paid_at": serializers.DateTimeField(help_text="ISO 8601 with a UTC offset."),
                    "channel": serializers.CharField(
                        required=False, max_length=32, help_text="atm, mobile_app, branch…"
                    ),
                },
            )
        },
        responses={
            201: OpenApiResponse(PaymentOut, description="Applied now."),
            200: OpenApiResponse(PaymentOut, description="The same request again: the first answer."),
            **_errors(404, 405, 409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        data = _valid(PaymentIn, json_object(request._request.body))
        try:
            currency = currency_check(data["currency"])
            amount = amount_parse(data["amount"], currency=currency)
        except ApplicationError:
            # A reference already used, sent again with another currency or an amount
            # that is no longer valid, is a conflict like any other changed field (the
            # contract): looked up only on this error path, never for a good payment.
            if payment_reference_used(provider=self.provider, reference=data["reference"]):
                raise ReferenceConflict(
                    "This reference was already used for another payment.", extra={"reference": data["reference"]}
                ) from None
            raise
        result = payment_apply(
            provider=self.provider,
            reference=data["reference"],
            account_number=data["account_number"],
            bill_number=data.get("bill_number") or None,
            amount=amount,
            currency=currency,
            paid_at=data["paid_at"],
            channel=data.get("channel") or "",
        )
        return Response(result.response, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class PaymentDetailApi(ProviderAPIView):
    @extend_schema(
        operation_id="payment_get",
        description="One of your payments with its current status; another provider's reference is 404.",
        summary="A payment of yours and its current status",
        responses={200: PaymentOut, **_errors(404, 405)},
    )
    def get(self, request: Request, reference: str) -> Response:
        payment = payment_get(provider=self.provider, reference=reference) if _REFERENCE.match(reference) else None
        if payment is None:
            raise ApiError("No payment of yours has this reference.", code="payment_not_found")
        return Response(payment_data(payment=payment))


class PaymentReversalApi(ProviderAPIView):
    @extend_schema(
        operation_id="payment_reverse",
        description="Undo a payment: its bills reopen and its credit is taken back. Repeating it is harmless.",
        summary="Reverse a payment (idempotent)",
        request={"application/json": ReversalIn},
        responses={200: PaymentOut, **_errors(404, 405)},
    )
    def post(self, request: Request, reference: str) -> Response:
        if not _REFERENCE.match(reference):
            raise ApiError("No payment of yours has this reference.", code="payment_not_found")
        data = _valid(ReversalIn, json_object(request._request.body))
        result = payment_reverse(provider=self.provider, reference=reference, reason=data["reason"])
        return Response(result.response)
