"""Region codes as the reports group them. The event schemas take any string; a code the reports cannot place in
the region tree (not ASCII digits, or of another length) is refused with the event, which goes to the
dead-letter topic, rather than stored to surface as a region of its own (or, with `%` or `_`, to match every
prefix in a LIKE)."""

from __future__ import annotations

from shared.consumer import PermanentError

REGION_LENGTHS = (2, 4, 6, 10)


def _checked(code: str, lengths: tuple[int, ...], what: str) -> str:
    if not (code.isascii() and code.isdigit() and len(code) in lengths):
        raise PermanentError(f"{what} {code[:20]!r} is not a region code of {'/'.join(map(str, lengths))} digits")
    return code


def village(code: str) -> str:
    return _checked(code, (10,), "village code")


def jurisdiction(code: str) -> str:
    return _checked(code, REGION_LENGTHS, "jurisdiction code")
