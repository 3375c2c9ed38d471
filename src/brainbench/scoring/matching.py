"""The one bipartite matcher: pair expected items with distinct actual items (parallel calls, sets, calendars)."""

from __future__ import annotations


def bipartite(ok: list[list[bool]]) -> list[int] | None:
    """A perfect matching of rows (expected) to distinct columns (actual): the column of each row, or None
    when there is none. `ok[r][c]` says whether actual item c can stand for expected item r (Kuhn's
    augmenting paths; the lists are small)."""
    match_col: dict[int, int] = {}

    def augment(r: int, seen: set[int]) -> bool:
        for c, good in enumerate(ok[r]):
            if good and c not in seen:
                seen.add(c)
                if c not in match_col or augment(match_col[c], seen):
                    match_col[c] = r
                    return True
        return False

    for r in range(len(ok)):
        if not augment(r, set()):
            return None
    out = [0] * len(ok)
    for c, r in match_col.items():
        out[r] = c
    return out
