"""Text fields refuse U+0000 and the other control characters (contract section 3).

Postgres cannot store U+0000 at all (a 500 before this check), and the other C0/C1 controls in a
name or an e-mail address only serve to spoof logs and terminals. A multi-line field keeps tab, line
feed and carriage return. The rule is published in the OpenAPI document as a ``pattern``, so a
client (or a schema-driven fuzzer) knows what is valid before sending it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

# Cc is exactly U+0000-U+001F and U+007F-U+009F; the same class in JSON Schema (ECMA-262) syntax.
_SINGLE_LINE = r"^[^\u0000-\u001f\u007f-\u009f]*$"
_MULTI_LINE = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
_SINGLE_LINE_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MULTI_LINE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value: str, *, multiline: bool = False) -> bool:
    return (_MULTI_LINE_RE if multiline else _SINGLE_LINE_RE).search(value) is not None


@dataclass(frozen=True, slots=True)
class NoControlCharacters:
    """``Annotated[str, ..., SingleLine]``: refuse control characters (422), and say so in the schema."""

    multiline: bool = False

    def check(self, value: str) -> str:
        if has_control_characters(value, multiline=self.multiline):
            allowed = " other than tab and line breaks" if self.multiline else ""
            raise PydanticCustomError("control_characters", f"Control characters{allowed} are not allowed")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", _MULTI_LINE if self.multiline else _SINGLE_LINE)
        return json_schema


SingleLine = NoControlCharacters()
MultiLine = NoControlCharacters(multiline=True)

# "Something besides white space", as a look-ahead that JSON Schema (ECMA-262) and Python agree on.
_NOT_BLANK = r"(?=[\s\S]*\S)"


@dataclass(frozen=True, slots=True)
class NotBlank:
    """``Annotated[str, SingleLine, NotBlank()]``: refuse text that is only white space (422), and
    fold the rule into the field's published ``pattern`` (after ``SingleLine``/``MultiLine``)."""

    def check(self, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        pattern = json_schema.get("pattern", "^.*$")
        json_schema["pattern"] = "^" + _NOT_BLANK + pattern.removeprefix("^")
        return json_schema


def ascii_digits(value: str, *, max_digits: int = 19) -> int | None:
    """The number ``value`` spells in ASCII digits, else None.

    ``str.isdigit`` also accepts "²" or "٣", which ``int`` then refuses (or reads), and a long
    enough string makes ``int`` raise too: numbers in headers and query strings are ASCII only.
    """
    if not value or len(value) > max_digits or not (value.isascii() and value.isdigit()):
        return None
    return int(value)
