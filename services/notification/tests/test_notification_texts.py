"""What people read: notification wording, e-mail templates, and the sender's backoff (no infrastructure)."""

from __future__ import annotations

import uuid

from notification.email import templates
from notification.email.sender import RetryPolicy
from notification.notifications import wording

ORDER = uuid.UUID("1b2c3d4e-0000-4000-8000-000000000000")


def test_money_in_minor_units() -> None:
    assert wording.money(123456, "USD") == "1,234.56 USD"
    assert wording.money(5, "EUR") == "0.05 EUR"
    assert wording.money(1500, "JPY") == "1,500 JPY"


def test_order_wording() -> None:
    created = wording.order_created(ORDER, 2500, "EUR", 3)
    assert created.title == "Order received"
    assert created.body == "We received your order 1b2c3d4e (3 items, 25.00 EUR)."
    assert wording.order_status_changed(ORDER, "shipped").title == "Order shipped"
    odd = wording.order_status_changed(ORDER, "lost_at_sea")
    assert (odd.title, odd.body) == ("Order updated", "Your order 1b2c3d4e is now lost_at_sea.")


def test_templates_escape_html_but_not_text() -> None:
    rendered = templates.message(full_name="<Ada>", title="Hi", body="a < b\n\nsecond & last")
    assert "Hello <Ada>," in rendered.text
    assert "a < b" in rendered.text
    assert "&lt;Ada&gt;" in rendered.html
    assert "<p>a &lt; b</p>" in rendered.html
    assert "<p>second &amp; last</p>" in rendered.html
    assert "<Ada>" not in rendered.html


def test_order_status_email_names_the_order_and_links_to_it() -> None:
    rendered = templates.order_status(
        full_name="Ada",
        subject="Order shipped: order 1b2c3d4e",
        headline="Your order 1b2c3d4e is on its way.",
        order_id=str(ORDER),
        status="shipped",
        total=None,
        public_url="https://shop.example.com",
    )
    assert rendered.template == "order_status"
    assert f"https://shop.example.com/orders/{ORDER}" in rendered.text
    assert "Total" not in rendered.text
    assert f'href="https://shop.example.com/orders/{ORDER}"' in rendered.html


def test_backoff_doubles_up_to_the_cap_then_gives_up() -> None:
    policy = RetryPolicy(max_attempts=6, base=5.0, cap=30.0)
    assert [policy.retry_in(n) for n in range(1, 7)] == [5.0, 10.0, 20.0, 30.0, 30.0, None]
