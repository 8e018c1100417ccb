"""Text cells that a spreadsheet program must read as text, never as a formula (OWASP CSV injection).

One rule for every export: a text that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
`'`. Numbers and everything else stay as they are.
"""

from __future__ import annotations

from typing import Any

#: What a spreadsheet program reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: Any) -> Any:
    """A text cell as plain text: prefixed with `'` when it starts like a formula. Anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
