"""Argument types shared by the subcommands: a bad value is one line naming the fix."""

from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        value = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def positive_int(text: str) -> int:
    """A whole number above 0."""
    value = _number(text)
    if not (value > 0 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number above 0")
    return int(value)


def nonneg_int(text: str) -> int:
    """A whole number, 0 or more."""
    value = _number(text)
    if not (value >= 0 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number, 0 or more")
    return int(value)


def positive_float(text: str) -> float:
    """A number above 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number above 0")
    return value


def nonneg_float(text: str) -> float:
    """A number, 0 or more."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number, 0 or more")
    return value


def share(text: str) -> float:
    """A share in (0, 1], e.g. 0.5."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a share in (0, 1], e.g. 0.5")
    return value
