from __future__ import annotations

from django.apps import AppConfig


class SandboxBankConfig(AppConfig):
    """A pretend bank for the demo and the tests. It is a client of Selfcare's bank
    API like any bank: it knows its key id, its secret and the API, nothing else."""

    name = "sandbox_bank"
    verbose_name = "Sandbox bank"
