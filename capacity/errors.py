"""Errors of the modelling core: bad input is named with its location and the fix.

CapacityError
├── RecordsError   a records file or frame breaks the schema or the metric rules
├── FitError       the data cannot support the requested fit (too few levels, no ok requests)
├── ModelFileError a saved CapacityModel cannot be read (format, version, fields)
├── ReportError    a report format or document that cannot be written or read
└── PlanInputError an invalid quota, workload or SLO (capacity.planning)
"""

from __future__ import annotations


class CapacityError(Exception):
    """Base of every error raised by ``capacity`` for bad input."""


class RecordsError(CapacityError, ValueError):
    """Records that break the schema; the message names file, line/row, column and the fix."""


class FitError(CapacityError, ValueError):
    """Data that cannot support a fit; the message says what to measure instead."""


class ModelFileError(CapacityError, ValueError):
    """A CapacityModel JSON file that cannot be read; the message names the file and field."""


class ReportError(CapacityError, ValueError):
    """An unknown report format, or a report document of another format or version."""
