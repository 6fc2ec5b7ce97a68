"""The checkout interface: one module per provider that takes a subscriber to pay.

A provider that hosts a checkout (the sandbox bank, a wallet such as Konnect; later
Wave, Orange Money, MTN MoMo) is one module in `payments/gateways/` holding a
`CheckoutProvider` subclass registered under the provider's key id or kind:

    @checkout_register("konnect")
    class KonnectCheckout(CheckoutProvider):
        def start(self, order): ...        # -> the address to send the subscriber to
        def fetch_status(self, order): ... # -> CheckoutStatus, read from the provider

`start` may set `order.provider_ref` (the provider's own id) before it returns;
the caller saves it. `fetch_status` must ask the provider, never trust a caller:
a webhook is only a trigger to call it, then `payments.orders.order_complete`.
Both raise `CheckoutError` when the provider cannot be reached or answers
something unusable; nothing is applied then, and the poller asks again.

`available()` says whether the adapter is configured on this server (an API key
set): a provider whose adapter is not is not offered to subscribers, and its
open orders wait for the poller. A provider's webhook, if it has one, is a view
of its own (its shape is the provider's), which only calls `orders.order_sync`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .models import PaymentOrder, Provider


@dataclass(frozen=True)
class CheckoutStatus:
    """What the provider says about an order."""

    # One of PaymentOrder.Status: "pending", "paid", "failed", "cancelled" (or
    # "expired" if the provider itself gave up on it).
    status: str
    # When paid: the amount the provider took and when; None if it does not say.
    amount: Decimal | None = None
    paid_at: dt.datetime | None = None
    detail: str = ""


class CheckoutError(Exception):
    """The provider could not be reached or refused the order (transient or not)."""


class CheckoutProvider:
    """Base of every checkout adapter; one instance per provider row."""

    # The key id(s) or kind(s) it serves, set by `checkout_register`.
    keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    @classmethod
    def available(cls) -> bool:
        """Configured on this server, so it may be offered; True unless it needs settings."""
        return True

    def start(self, order: PaymentOrder, *, return_url: str) -> str:
        """Open the checkout at the provider; return the URL to redirect the subscriber to.
        `return_url` is Selfcare's result page for this order (absolute)."""
        raise NotImplementedError

    def fetch_status(self, order: PaymentOrder) -> CheckoutStatus:
        """Ask the provider where the order stands."""
        raise NotImplementedError

    def checkout_origins(self) -> list[str]:
        """Other origins (`https://host[:port]`) `start` may send the subscriber to.
        The pay page's Content-Security-Policy (form-action) allows exactly these
        besides our own: a browser follows the form's redirect nowhere else."""
        return []


# Filled when PaymentsConfig.ready() imports payments.gateways.
_REGISTRY: dict[str, type[CheckoutProvider]] = {}


def checkout_register(*keys: str):
    """Class decorator: serve the providers whose key id (first) or kind is in `keys`."""

    def decorate(cls: type[CheckoutProvider]) -> type[CheckoutProvider]:
        cls.keys = keys
        for key in keys:
            _REGISTRY[key] = cls
        return cls

    return decorate


def checkout_for(provider: Provider) -> CheckoutProvider | None:
    """The adapter for a provider: by its key id, else by its kind; None if it has no checkout.
    Returned even when it is not `available()`: its orders must still be asked about."""
    cls = _REGISTRY.get(provider.key_id) or _REGISTRY.get(provider.kind)
    return cls(provider) if cls else None


def checkout_supported(provider: Provider) -> bool:
    """A subscriber may start a checkout with this provider here."""
    cls = _REGISTRY.get(provider.key_id) or _REGISTRY.get(provider.kind)
    return cls is not None and cls.available()


def checkout_origins(providers: Iterable[Provider]) -> list[str]:
    """The origins the pay page's form may lead to, for the providers it offers."""
    origins: set[str] = set()
    for provider in providers:
        adapter = checkout_for(provider)
        if adapter is not None:
            origins.update(adapter.checkout_origins())
    return sorted(origins)


def url_origin(url: str) -> str:
    """`https://host[:port]` of an address, as CSP and browsers compare them."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
