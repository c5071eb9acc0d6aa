"""E-mail templates: a plain-text body and an HTML alternative for each kind of message.

``string.Template`` keeps them readable and free of logic; values are HTML-escaped before they reach
the HTML body, never in the text body.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from string import Template

# The welcome e-mail is rendered with the account e-mails (notification.email.account).
WELCOME, ORDER_STATUS, MESSAGE = "welcome", "order_status", "message"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    template: str
    subject: str
    text: str
    html: str


_LAYOUT = Template(
    """<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5; color: #222;">
$content
<p style="color: #888; font-size: 12px;">You receive this e-mail because you have an account with us.</p>
</body></html>
"""
)

_ORDER_TEXT = Template(
    """Hello $name,

$headline

Order: $order_id
Status: $status
$details
Follow it at $url
"""
)
_ORDER_HTML = Template(
    """<p>Hello $name,</p>
<p>$headline</p>
<table>
<tr><td>Order</td><td><code>$order_id</code></td></tr>
<tr><td>Status</td><td>$status</td></tr>
$details
</table>
<p><a href="$url">Follow your order</a></p>"""
)

_MESSAGE_TEXT = Template("""Hello $name,

$body
""")
_MESSAGE_HTML = Template("""<p>Hello $name,</p>
$paragraphs""")


def _escaped(values: dict[str, str]) -> dict[str, str]:
    return {key: html.escape(value) for key, value in values.items()}


def _page(content: str) -> str:
    return _LAYOUT.substitute(content=content)


def order_status(
    *,
    full_name: str,
    subject: str,
    headline: str,
    order_id: str,
    status: str,
    total: str | None,
    public_url: str,
) -> RenderedEmail:
    values = {
        "name": full_name,
        "headline": headline,
        "order_id": order_id,
        "status": status,
        "url": f"{public_url}/orders/{order_id}",
    }
    text_details = f"Total: {total}\n" if total else ""
    html_details = f"<tr><td>Total</td><td>{html.escape(total)}</td></tr>" if total else ""
    return RenderedEmail(
        template=ORDER_STATUS,
        subject=subject,
        text=_ORDER_TEXT.substitute(values, details=text_details),
        html=_page(_ORDER_HTML.substitute(_escaped(values), details=html_details)),
    )


def message(*, full_name: str, title: str, body: str) -> RenderedEmail:
    """A free-form message another service asked for (notification.requested)."""
    paragraphs = "\n".join(
        "<p>" + html.escape(part).replace("\n", "<br>") + "</p>"
        for part in body.split("\n\n")
        if part.strip()
    )
    return RenderedEmail(
        template=MESSAGE,
        subject=title,
        text=_MESSAGE_TEXT.substitute(name=full_name, body=body),
        html=_page(_MESSAGE_HTML.substitute(name=html.escape(full_name), paragraphs=paragraphs)),
    )
