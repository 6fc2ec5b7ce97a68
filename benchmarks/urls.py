"""The app's URLs plus the baselines of the benchmarks:

- /bare/<pk>/ (portal.py): a plain Django view that reads one row by primary key;
- /bench/payments (payments.py): a bare DRF view doing a payment's minimum, one
  `SELECT … FOR UPDATE`, one UPDATE and one INSERT in a transaction, on tables of
  its own (bench_account, bench_payment, created by payments.py), so that it
  leaves the app's accounts and payments as the app's load made them.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Agency
from selfcare.urls import urlpatterns as app_urlpatterns


def bare(request: HttpRequest, pk: int) -> HttpResponse:
    agency = Agency.objects.get(pk=pk)
    return HttpResponse(agency.code, content_type="text/plain; charset=utf-8")


class BarePaymentApi(APIView):
    """The floor of a payment: the same signed JSON body parsed, the account row
    locked, credited and a payment row inserted, in one transaction. No signature
    check, inbox, idempotency, allocation or message: what the app adds to this is
    what payments.py measures."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        try:
            data = json.loads(request._request.body)
            reference, number, currency = data["reference"], data["account_number"], data["currency"]
            amount = Decimal(data["amount"])
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return Response({"error": "bad body"}, status=status.HTTP_400_BAD_REQUEST)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT id FROM bench_account WHERE number = %s FOR UPDATE", [number])
            row = cursor.fetchone()
            if row is None:
                return Response({"error": "no such account"}, status=status.HTTP_404_NOT_FOUND)
            cursor.execute("UPDATE bench_account SET balance = balance + %s WHERE id = %s", [amount, row[0]])
            cursor.execute(
                "INSERT INTO bench_payment (reference, account_id, amount, currency, paid_at) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                [reference, row[0], amount, currency, data.get("paid_at")],
            )
            (payment_id,) = cursor.fetchone()
        return Response(
            {"reference": reference, "status": "applied", "id": payment_id, "account_number": number,
             "amount": data["amount"], "currency": currency},
            status=status.HTTP_201_CREATED,
        )  # fmt: skip


urlpatterns = [
    path("bare/<int:pk>/", bare, name="bench_bare"),
    path("bench/payments", BarePaymentApi.as_view(), name="bench_bare_payment"),
    *app_urlpatterns,
]
