"""The dead-letter command prints what a publisher wrote without letting it drive the terminal."""

from __future__ import annotations

import io
import json

from shared.messaging.dlq import DeadLetter, printable, write_list


def letter(**fields: str) -> DeadLetter:
    values = {
        "message_id": "m-1",
        "event_type": "order.created",
        "attempts": 5,
        "error": "boom",
        "dead_lettered_at": "",
        "body": "{}",
    }
    values.update(fields)
    return DeadLetter(**values)  # type: ignore[arg-type]


def test_list_escapes_terminal_control_sequences() -> None:
    out = io.StringIO()
    hostile = letter(
        message_id="\x1b[2J\x1b[Hfake-id",
        event_type="order.created\r\x1b]0;pwned\x07",
        error="line one\nline two\u202e",
    )
    write_list(out, [letter(), hostile], "orders")
    text = out.getvalue()
    assert all(c.isprintable() or c in "\t\n" for c in text)
    lines = text.splitlines()
    assert lines[0] == "m-1\torder.created\tattempts=5\tboom"
    assert lines[1] == (
        "\\x1b[2J\\x1b[Hfake-id\torder.created\\r\\x1b]0;pwned\\x07\tattempts=5\tline one\\nline two\\u202e"
    )
    assert lines[2] == "2 message(s) in orders.dlq"


def test_printable_keeps_ordinary_text() -> None:
    assert printable("user.registered é 中") == "user.registered é 中"


def test_show_output_is_json_with_escapes() -> None:
    dumped = json.dumps(letter(message_id="\x1b[2J").__dict__)
    assert "\x1b" not in dumped
