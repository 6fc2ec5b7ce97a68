"""Checkout adapters, one module per provider; importing them registers them.
(konnect_fake.py is not one: it is the stand-in gateway of the demo and the tests.)"""

from . import konnect, sandbox  # noqa: F401
