"""Checkout adapters, one module per provider; importing them registers them."""

from . import sandbox  # noqa: F401
