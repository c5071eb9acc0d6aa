"""What order notifications say: titles and bodies a person reads, from the facts in the events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# ISO 4217 currencies without minor units; every other currency is shown with two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                                     "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Wording:
    title: str
    body: str


def money(cents: int, currency: str) -> str:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{cents:,} {currency}"
    return f"{cents // 100:,}.{cents % 100:02d} {currency}"


def short_id(order_id: uuid.UUID) -> str:
    """The first block of the id: enough for a person to tell their orders apart."""
    return str(order_id).split("-", 1)[0]


def order_created(order_id: uuid.UUID, total_cents: int, currency: str, item_count: int) -> Wording:
    items = "1 item" if item_count == 1 else f"{item_count} items"
    return Wording(
        title="Order received",
        body=f"We received your order {short_id(order_id)} ({items}, {money(total_cents, currency)}).",
    )


_STATUS_WORDING = {
    "pending": ("Order received", "Your order {order} is waiting for payment."),
    "paid": ("Payment received", "We received the payment for your order {order}."),
    "shipped": ("Order shipped", "Your order {order} is on its way."),
    "delivered": ("Order delivered", "Your order {order} was delivered. Enjoy!"),
    "cancelled": ("Order cancelled", "Your order {order} was cancelled."),
}


def order_status_changed(order_id: uuid.UUID, to_status: str) -> Wording:
    title, body = _STATUS_WORDING.get(to_status, ("Order updated", "Your order {order} is now {status}."))
    return Wording(title=title, body=body.format(order=short_id(order_id), status=to_status))
