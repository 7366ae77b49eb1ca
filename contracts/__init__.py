"""The data contracts between llmcap's programs: what ``bench`` writes and ``capacity`` reads.

A leaf package: it imports nothing of llmcap, so the load generator (``bench``) and the
modelling core (``capacity``) can share one definition without importing each other
(docs/architecture.md, "Records").
"""

from contracts.records import RAW_COLUMNS, STATUSES

__all__ = ["RAW_COLUMNS", "STATUSES"]
