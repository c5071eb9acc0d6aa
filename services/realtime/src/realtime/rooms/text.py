"""Length limits of rooms' text fields (contract section 6); the control-character rule is shared.text's."""

from __future__ import annotations

NAME_MAX = 100
TOPIC_MAX = 500
MESSAGE_MAX = 2000
BROADCAST_TITLE_MAX = 200
BROADCAST_BODY_MAX = 2000
