"""Complementary (secondary) suppression: no withheld count can be worked out from the shown ones by subtraction.

Regions nest (nation, province, regency, district, village) and each count of a region is the sum of its
children's: a district's households are its villages' households. Withholding only the small cells would let
anyone take a district's total minus its shown villages and get the one village withheld. So, per count column,
in every group of siblings (the children of one region):

- under a shown parent, the withheld children are never exactly one, nor sum to less than the threshold: while
  they do, the smallest shown sibling is withheld too (the next-smallest cell, ties by code);
- under a withheld parent, at least one child is withheld (else the parent would be their sum);
- the nation has no parent: when its provinces would give one away, the nation's own cell is withheld.

The same rule holds across the columns of one row where some of them sum to another (`partitions`: the age
groups to the members, the outcomes of referrals to those created), the total taking the parent's place. Rows and
columns are repeated until neither adds a cell. The nation's own row is the one exception: a part is withheld
there only if some province withholds it too, so where none does, a small national part can remain its total
minus the other parts.

Every equation "region = sum of its children" then holds none or at least two unknown cells, and such a tree of
sums determines no single unknown. A region's cells depend only on its own group and its ancestors' groups, never
on the report that shows them, so every report (one region, a breakdown, the matrix, the ranking) withholds the
same cells. That costs a statement per ancestor level: a village's row reads its district, regency and province.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

#: A statement grouped by region: (region prefix, group length) -> {region code: {column: value}}. A column is a
#: key of any kind: an indicator's, or (field, category, count) for needs by category.
Fetch = Callable[[str, int], Awaitable[dict[str, dict[Any, Any]]]]

CHILD_LENGTH = {0: 2, 2: 4, 4: 6, 6: 10}
PARENT_LENGTH = {2: 0, 4: 2, 6: 4, 10: 6}


#: (total, parts): columns of one row where the parts sum to the total.
Partitions = Sequence[tuple[str, Sequence[str]]]


def exposed(hidden: list[int], *, parent_withheld: bool, threshold: int) -> bool:
    """Whether siblings with these withheld values give one away: one alone, or a sum that says too much, under a
    shown parent; none at all under a withheld one."""
    if parent_withheld:
        return not hidden
    return bool(hidden) and (len(hidden) == 1 or sum(hidden) < threshold)


def protect(counts: dict[str, int], withheld: set[str], *, parent_withheld: bool, threshold: int) -> set[str]:
    """The siblings to withhold besides `withheld` (by code), smallest first, until none of them follows from the
    parent (or none is left to withhold)."""
    shown = sorted((value, code) for code, value in counts.items() if code not in withheld)
    hidden = [counts[code] for code in withheld if code in counts]
    extra: set[str] = set()
    while shown and exposed(hidden, parent_withheld=parent_withheld, threshold=threshold):
        value, code = shown.pop(0)
        hidden.append(value)
        extra.add(code)
    return extra


def protect_rows(rows: dict[str, dict[Any, Any]], withheld: dict[str, set[Any]], partitions: Partitions,
                 threshold: int) -> bool:
    """Apply `protect` within each row's partitions, adding to `withheld`; whether it added anything."""
    added = False
    for code, values in rows.items():
        for total, parts in partitions:
            counts = {part: int(values.get(part) or 0) for part in parts}
            extra = protect(counts, {p for p in parts if p in withheld[code]}, parent_withheld=total in withheld[code],
                            threshold=threshold)
            withheld[code] |= extra
            added = added or bool(extra)
    return added


class Hierarchy:
    """The count cells withheld in each region, computed once per request from the grouped statements it reads."""

    def __init__(self, fetch: Fetch, columns: list[Any] | None, threshold: int, partitions: Partitions = ()) -> None:
        """`columns`: the count columns decided on, or None for every column the statements return (a report whose
        rows hold only what occurred, such as needs by category; there a region without a column shows no row)."""
        self._fetch = fetch
        self._columns = columns
        self._threshold = threshold
        self._partitions = [(t, ps) for t, ps in partitions if columns is None or {t, *ps} <= set(columns)]
        self._groups: dict[tuple[str, int], dict[str, dict[Any, Any]]] = {}
        self._children: dict[str, dict[str, set[Any]]] = {}

    async def group(self, prefix: str, length: int) -> dict[str, dict[Any, Any]]:
        """The regions of `length` digits within `prefix`, from a statement already run when one covers them."""
        for (covered, covered_length), groups in self._groups.items():
            if covered_length == length and prefix.startswith(covered):
                return {code: values for code, values in groups.items() if code.startswith(prefix)}
        groups = await self._fetch(prefix, length)
        self._groups[(prefix, length)] = groups
        return groups

    async def values(self, code: str) -> dict[Any, Any]:
        return (await self.group(code, len(code))).get(code, {})

    async def rows(self, prefix: str, length: int, *, suppressed: bool) -> dict[str, dict[Any, Any]]:
        """A report's rows: the region itself (`length` its own) or its breakdown. When cells are withheld, the
        statements they need are read first and the rows taken from them, so shown and withheld agree."""
        if length == len(prefix):
            if suppressed:
                await self.withheld(prefix)
            return {prefix: await self.values(prefix)}
        if suppressed:
            await self.within(prefix, length)
        return await self.group(prefix, length)

    async def within(self, prefix: str, deepest: int) -> None:
        """Read every level below `prefix` down to `deepest` digits, one statement per level, so that no region
        under it needs a statement of its own (down to the regencies at least: provinces' cells are decided from
        their regencies' sums)."""
        deepest = max(deepest, CHILD_LENGTH[2]) if deepest >= 2 else deepest
        for length in CHILD_LENGTH.values():
            if len(prefix) < length <= deepest:
                await self.group(prefix, length)

    def _columns_of(self, groups: dict[str, dict[Any, Any]]) -> list[Any]:
        return self._columns if self._columns is not None else sorted({k for v in groups.values() for k in v})

    def _small(self, values: dict[Any, Any], columns: list[Any]) -> set[Any]:
        return {k for k in columns if (values.get(k) or 0) < self._threshold}

    def _own(self, values: dict[Any, Any], columns: list[Any]) -> set[Any]:
        """A row's cells decided from the row alone (a province's: it has no siblings): small, and its partitions."""
        out = {"": self._small(values, columns)}
        protect_rows({"": values}, out, self._partitions, self._threshold)
        return out[""]

    def _sums(self, groups: dict[str, dict[Any, Any]], columns: list[Any]) -> dict[Any, int]:
        return {k: sum(int(v.get(k) or 0) for v in groups.values()) for k in columns}

    async def withheld(self, code: str) -> set[Any]:
        """The count columns withheld in one region's row."""
        if len(code) == 2:
            # A province's counts are its regencies' sums: the statement its children need anyway.
            regencies = await self.group(code, 4)
            columns = self._columns_of(regencies)
            return self._own(self._sums(regencies, columns), columns)
        if code:
            return (await self._withheld_children(code[:PARENT_LENGTH[len(code)]])).get(code, set(self._columns or ()))
        provinces = await self.group("", 2)
        columns = self._columns_of(provinces)
        hidden = self._small(self._sums(provinces, columns), columns)
        small = {code: self._own(values, columns) for code, values in provinces.items()}
        for k in columns:
            small_provinces = [int(v.get(k) or 0) for c, v in provinces.items() if k in small[c]]
            if exposed(small_provinces, parent_withheld=False, threshold=self._threshold):
                hidden.add(k)
        # Its row's parts: a part withheld besides must be one some province withholds too (else the provinces'
        # sum would give it back), and the provinces' cells cannot wait for the nation's.
        nation = self._sums(provinces, columns)
        backed = {k for k in columns if any(k in small[c] for c in provinces)}
        for total, parts in self._partitions:
            counts = {part: nation[part] for part in parts if part in backed or part in hidden}
            hidden |= protect(counts, {part for part in parts if part in hidden}, parent_withheld=total in hidden,
                              threshold=self._threshold)
        return hidden

    async def _withheld_children(self, parent: str) -> dict[str, set[Any]]:
        if parent in self._children:
            return self._children[parent]
        children = await self.group(parent, CHILD_LENGTH[len(parent)])
        parent_hidden = await self.withheld(parent)
        columns = self._columns_of(children)
        out = {code: self._small(values, columns) for code, values in children.items()}
        added = True
        while added:
            added = protect_rows(children, out, self._partitions, self._threshold)
            for k in columns:
                counts = {code: int(values.get(k) or 0) for code, values in children.items()}
                for code in protect(counts, {c for c in counts if k in out[c]}, parent_withheld=k in parent_hidden,
                                    threshold=self._threshold):
                    out[code].add(k)
                    added = True
        self._children[parent] = out
        return out
