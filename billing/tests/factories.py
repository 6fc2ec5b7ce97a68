from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from accounts.tests.factories import SubscriberFactory
from billing.models import Bill, Consumption, Plan, PlanTier, ServiceAccount, ServiceKind, Unit
from billing.numbers import account_number_from_serial


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"PLAN-{n}")
    name_ar = "منزلي"
    name_fr = "Résidentiel"
    name_en = "Residential"
    kind = ServiceKind.ELECTRICITY
    monthly_fee = Decimal("0.800")

    @factory.post_generation
    def tiers(self, create: bool, extracted, **kwargs) -> None:
        # Electricity-style progressive tranches unless told otherwise.
        if not create or not self.is_utility:
            return
        spec = extracted if extracted is not None else [(0, 50, "0.062"), (50, 100, "0.096"), (100, None, "0.176")]
        for position, (low, high, price) in enumerate(spec, start=1):
            PlanTier.objects.create(
                plan=self,
                position=position,
                from_quantity=Decimal(low),
                to_quantity=None if high is None else Decimal(high),
                unit_price=Decimal(price),
            )


class ServiceAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceAccount

    number = factory.Sequence(lambda n: account_number_from_serial(900_000 + n))
    subscriber = factory.SubFactory(SubscriberFactory)
    kind = ServiceKind.ELECTRICITY
    plan = factory.SubFactory(PlanFactory, kind=factory.SelfAttribute("..kind"))
    meter_number = factory.Sequence(lambda n: f"M{n:08d}")
    service_address = "12 avenue Habib Bourguiba, Tunis"


class ConsumptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consumption

    account = factory.SubFactory(ServiceAccountFactory)
    period = dt.date(2026, 1, 1)
    unit = Unit.KWH
    quantity = Decimal("180")


class BillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bill

    account = factory.SubFactory(ServiceAccountFactory)
    period = dt.date(2026, 9, 1)
    number = factory.LazyAttribute(lambda o: f"{o.account.number}-{o.period:%Y%m}")
    issue_date = factory.LazyAttribute(
        lambda o: (
            o.period.replace(month=o.period.month % 12 + 1)
            if o.period.month < 12
            else o.period.replace(year=o.period.year + 1, month=1)
        )
    )
    due_date = factory.LazyAttribute(lambda o: o.issue_date + dt.timedelta(days=20))
    currency = "TND"
    amount_lines = Decimal("50.000")
    amount_tax = Decimal("9.500")
    amount_total = Decimal("59.500")
    amount_paid = Decimal("0")
    amount_due = Decimal("59.500")
    status = Bill.Status.ISSUED
