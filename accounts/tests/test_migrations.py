"""The move from one agency to several keeps every staff member's agency."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_staff_keep_their_agency_when_they_may_have_several() -> None:
    before, after = (
        [("accounts", "0002_subscriber_paperless_contactchannel_and_more")],
        [("accounts", "0003_staff_agencies")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Agency, User = old.get_model("accounts", "Agency"), old.get_model("accounts", "User")
    agency = Agency.objects.create(code="TUN-C", name_ar="تونس", name_fr="Tunis", city="Tunis", address="Tunis")
    User.objects.create(email="clerk@agency.example", is_staff=True, agency=agency)
    User.objects.create(email="head@office.example", is_staff=True)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("accounts", "User")
    assert list(new.objects.get(email="clerk@agency.example").agencies.values_list("code", flat=True)) == ["TUN-C"]
    assert not new.objects.get(email="head@office.example").agencies.exists()

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the suite needs today's schema
