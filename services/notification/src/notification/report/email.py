"""The daily report e-mail: the previous UTC day's figures, as text and as a small HTML table."""

from __future__ import annotations

from html import escape

from notification.email.templates import RenderedEmail
from notification.report.counts import DayFigures

ORDER_STATUSES = ("paid", "shipped", "delivered", "cancelled")


def lines(figures: DayFigures) -> list[tuple[str, int]]:
    by_status = {status: figures.orders_by_status.get(status, 0) for status in ORDER_STATUSES}
    by_status.update(figures.orders_by_status)
    return [
        ("Users registered", figures.users_registered),
        ("Orders created", figures.orders_created),
        *((f"Orders {status}", count) for status, count in by_status.items()),
        ("E-mails sent", figures.emails_sent),
        ("E-mails failed", figures.emails_failed),
    ]


def daily_report(figures: DayFigures, *, full_name: str) -> RenderedEmail:
    day = figures.day.isoformat()
    rows = lines(figures)
    text = "\n".join(
        [f"Hello {full_name},", "", f"The figures of {day} (UTC):", ""]
        + [f"{label}: {value}" for label, value in rows]
    )
    cells = "".join(f"<tr><td>{escape(label)}</td><td>{value}</td></tr>" for label, value in rows)
    html = (
        f"<!doctype html><html><body><p>Hello {escape(full_name)},</p>"
        f"<p>The figures of {day} (UTC):</p><table>{cells}</table></body></html>"
    )
    return RenderedEmail(template="daily_report", subject=f"Daily report for {day}", text=text, html=html)
