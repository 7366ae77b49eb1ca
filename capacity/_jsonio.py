"""Exact JSON for fitted values: floats round-trip bit for bit, NaN and ±inf included.

JSON has no NaN or infinity; they are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``, so files stay standard JSON (``allow_nan=False``) and read back exactly. Finite
floats use Python's shortest round-trip repr.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from capacity.errors import ModelFileError

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def enc(x: float) -> float | str:
    """A float as a JSON value (non-finite → string)."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def dec(v: Any, field: str = "value") -> float:
    """A JSON value written by ``enc`` back to a float."""
    if isinstance(v, str) and v in _SPECIAL:
        return _SPECIAL[v]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ModelFileError(f"{field} must be a number, got {v!r}")
    return float(v)


def enc_all(xs: Iterable[float]) -> list[float | str]:
    """A sequence of floats as a JSON list."""
    return [enc(x) for x in xs]


def dec_all(vs: Any, field: str = "values") -> tuple[float, ...]:
    """A JSON list back to a tuple of floats."""
    if not isinstance(vs, list):
        raise ModelFileError(f"{field} must be a list, got {type(vs).__name__}")
    return tuple(dec(v, field) for v in vs)


def need(doc: Mapping[str, Any], key: str, where: str) -> Any:
    """``doc[key]``, or a ``ModelFileError`` naming the missing field."""
    if not isinstance(doc, Mapping):
        raise ModelFileError(f"{where} must be a JSON object, got {type(doc).__name__}")
    if key not in doc:
        raise ModelFileError(f"{where}: missing field {key!r}")
    return doc[key]
