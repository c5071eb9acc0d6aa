"""Text rules of rooms and messages (contract section 3: no control characters in text fields)."""

from __future__ import annotations

import re

NAME_MAX = 100
TOPIC_MAX = 500
MESSAGE_MAX = 2000
BROADCAST_TITLE_MAX = 200
BROADCAST_BODY_MAX = 2000

# C0 and C1 controls and DEL; tab, line feed and carriage return only where a field is multi-line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value: str, *, multiline: bool) -> bool:
    return (_CONTROL_MULTILINE if multiline else _CONTROL).search(value) is not None
