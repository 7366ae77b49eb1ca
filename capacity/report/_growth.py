"""Growth projections (``WHEN=USERS``), parsed once for the command line and the app."""

from __future__ import annotations

import math
from collections.abc import Iterable

from capacity.planning import MAX_TARGET_USERS, PlanInputError

__all__ = ["parse_growth"]

EXAMPLE = "'+6 months=3000'"


def parse_growth(items: str | Iterable[str]) -> list[tuple[str, float]]:
    """``(label, users)`` pairs from ``WHEN=USERS`` items: a text of one item per line (blank
    lines ignored) or the items themselves. USERS may carry thousands separators
    (``3,000``); a bad item raises ``PlanInputError`` naming it and the expected form."""
    lines = items.splitlines() if isinstance(items, str) else list(items)
    out = []
    for item in lines:
        if not item.strip():
            continue
        label, sep, users = item.rpartition("=")
        try:
            value = float(users.strip().replace(",", "").replace("_", ""))
        except ValueError:
            value = math.nan
        if not sep or not label.strip() or not 0 < value <= MAX_TARGET_USERS:
            raise PlanInputError(
                f"growth {item.strip()!r}: write WHEN=USERS with 0 < USERS <= "
                f"{MAX_TARGET_USERS:,.0f}, e.g. {EXAMPLE}"
            )
        out.append((label.strip(), value))
    return out
