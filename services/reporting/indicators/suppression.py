"""Rates from counts, and small-cell suppression: a count below the threshold is never shown to a non-admin.

Which counts are withheld (the small ones, and those withheld so that no small one can be derived) is the
business of `complementary.py`. A withheld cell is `null` in JSON (its key listed in the row's `suppressed`) and
`x` in CSV and Excel. A rate whose numerator or denominator is withheld, and a median or percentile whose
underlying count is, are withheld too: a shown rate over a shown denominator would give the numerator back.
Zero is a count below the threshold like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.reporting.indicators.catalogue import Indicator


def with_rates(values: dict[str, Any], indicators: Iterable[Indicator]) -> dict[str, Any]:
    """The row's values with every indicator present: counts default to 0, rates computed (None over zero)."""
    out: dict[str, Any] = {}
    for indicator in indicators:
        if indicator.kind == "count":
            out[indicator.key] = int(values.get(indicator.key) or 0)
        elif indicator.kind == "hours":
            out[indicator.key] = values.get(indicator.key)
    for indicator in indicators:
        if indicator.kind == "rate":
            assert indicator.numerator and indicator.denominator
            numerator, denominator = out.get(indicator.numerator, 0), out.get(indicator.denominator, 0)
            out[indicator.key] = round(numerator / denominator, 4) if denominator else None
    return out


def counts_of(indicators: Iterable[Indicator]) -> list[str]:
    """The keys of the counts among the indicators: the cells suppression decides on."""
    return [i.key for i in indicators if i.kind == "count"]


def suppress(values: dict[str, Any], indicators: Iterable[Indicator], withheld: set[str]) -> list[str]:
    """Blank (in place) the withheld counts and every cell derived from one; returns their keys."""
    indicators = list(indicators)
    hidden = {i.key for i in indicators if i.kind == "count" and i.key in withheld}
    for indicator in indicators:
        if indicator.kind == "rate" and ({indicator.numerator, indicator.denominator} & hidden):
            hidden.add(indicator.key)
        if indicator.kind == "hours" and indicator.numerator in hidden:
            hidden.add(indicator.key)
    for key in hidden:
        values[key] = None
    return sorted(hidden)
