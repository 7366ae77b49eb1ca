"""Request records: the one schema, loading and validation, derived metrics, summaries.

``load_records`` reads a run directory, JSONL, Parquet or the seed's CSV; every per-request
metric (TTFT, TTLT, TPOT, tps, in-flight counts) is derived here and nowhere else
(docs/architecture.md, "Records").
"""

from capacity.records._derive import (
    ConcurrencyStats,
    concurrency_stats,
    concurrency_timeline,
    derive_metrics,
    interval_end_s,
)
from capacity.records._load import load_records
from capacity.records._prompts import prompt_sizes
from capacity.records._schema import RECORD_COLUMNS, STATUSES
from capacity.records._summary import SUMMARY_COLUMNS, compare_prompts, seed_table, summarize
from capacity.records._synthetic import SyntheticPrompt, synthetic_records
from capacity.records._validate import ensure_records, validate_records

__all__ = [
    "RECORD_COLUMNS",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "ConcurrencyStats",
    "SyntheticPrompt",
    "compare_prompts",
    "concurrency_stats",
    "concurrency_timeline",
    "derive_metrics",
    "ensure_records",
    "interval_end_s",
    "load_records",
    "prompt_sizes",
    "seed_table",
    "summarize",
    "synthetic_records",
    "validate_records",
]
