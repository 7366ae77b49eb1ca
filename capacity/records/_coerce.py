"""Coercing record columns to their schema dtypes, and naming the first bad row when one fails.

``Checker.fail`` raises ``RecordsError`` for the first row of a mask, with the source, the
row's place in it, what is wrong, how many more rows share the problem, and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from capacity.errors import RecordsError

Locate = Callable[[int], str]
"""Row position → where it is in the source, e.g. ``"line 12"``."""

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def show(value: Any) -> str:
    """A value for a message: numpy scalars as plain Python values."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def at(template: str, **arrays: npt.NDArray[Any]) -> Callable[[int], str]:
    """A row message: ``template`` formatted with each array's value at the row."""

    def describe(i: int) -> str:
        return template.format(**{k: show(a[i]) for k, a in arrays.items()})

    return describe


class Checker:
    """Raises ``RecordsError`` for the first offending row of a rule, counting the others."""

    def __init__(self, source: str, locate: Locate) -> None:
        self.source = source
        self.locate = locate

    def fail(self, mask: npt.NDArray[np.bool_], message: Callable[[int], str], fix: str) -> None:
        bad = np.flatnonzero(mask)
        if bad.size == 0:
            return
        first = int(bad[0])
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        where = self.locate(first)
        raise RecordsError(f"{self.source}: {where}: {message(first)}{more}; {fix}")


def to_float(series: pd.Series[Any], name: str, check: Checker) -> npt.NDArray[np.float64]:
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series):
        numeric = pd.to_numeric(series, errors="coerce")
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        given = series.notna().to_numpy() & (series.astype("string").str.strip() != "").fillna(
            False
        ).to_numpy(dtype=bool)
        check.fail(
            given & np.isnan(values),
            lambda i: f"column {name} = {show(series.iloc[i])} is not a number",
            f"write a number or null in {name}",
        )
        return values
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _to_int(series: pd.Series[Any], name: str, check: Checker) -> npt.NDArray[np.int64]:
    values = to_float(series, name, check)
    check.fail(
        ~np.isfinite(values),
        lambda i: f"column {name} is {show(series.iloc[i])}",
        f"write a whole number in {name}",
    )
    check.fail(
        values != np.round(values),
        lambda i: f"column {name} = {show(values[i])} is not a whole number",
        f"write a whole number in {name}",
    )
    return values.astype(np.int64)


def _to_bool(
    series: pd.Series[Any], name: str, check: Checker, notes: list[str]
) -> npt.NDArray[np.bool_]:
    if pd.api.types.is_bool_dtype(series.dtype) and not series.isna().any():
        return series.to_numpy(dtype=bool)
    text = series.astype("string").str.strip().str.lower()
    true, false = text.isin(_TRUE).to_numpy(bool), text.isin(_FALSE).to_numpy(bool)
    null = series.isna().to_numpy(dtype=bool)
    if null.any():
        notes.append(f"{int(null.sum())} rows without {name}: taken as false")
    check.fail(
        ~(true | false | null),
        lambda i: f"column {name} = {show(series.iloc[i])} is not true/false",
        f"write true or false in {name}",
    )
    return true


def coerce(series: pd.Series[Any], name: str, dtype: str, check: Checker, notes: list[str]) -> Any:
    if dtype == "float64":
        return to_float(series, name, check)
    if dtype == "int64":
        return _to_int(series, name, check)
    if dtype == "bool":
        return _to_bool(series, name, check, notes)
    return series.astype("string").reset_index(drop=True)


def text(values: Any) -> pd.Series[Any]:
    return pd.Series(pd.array(values, dtype="string"))
