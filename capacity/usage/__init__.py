"""Measured usage of a Bedrock model id (per-minute CloudWatch data): quota-token usage with
burndown, percentiles of TPM and RPM, daily totals, the growth trend and the exhaustion forecast;
and on-demand cost (``load_prices``, ``monthly_cost``). Pure: the frame comes from ``account``
(CloudWatch) or from ``synthetic_usage``; see docs/account.md.

Real traffic (docs/traffic.md): ``load_requests`` reads Bedrock invocation logs (a folder, or
objects handed over by ``account``), CloudWatch Logs exports of them, request traces (CSV,
Parquet, JSON lines; the Azure LLM traces as they are) and llmcap runs into one normalised
``RequestTable`` (``REQUEST_COLUMNS``) with a ``LoadReport``; ``request_arrays`` gives one
model's requests as numpy arrays for the replay; ``analyze_traffic`` (DuckDB, or Ray Data)
describes them — per-second and per-minute peaks, burstiness, token distributions, the share
above 25,000 prompt tokens — and builds the same usage frame and summary as CloudWatch;
``traffic_template`` and ``scale_trace`` turn a shipped trace into N users' traffic.

Names load lazily: ``import capacity.usage`` and the cost functions pay for neither pandas
nor statsmodels; statsmodels loads when a forecast is fitted. ``capacity.planning`` does not
import this package (the arrow goes the other way: ``UsageSummary.workload()`` builds a
planning ``Workload``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "LATENCY_COLUMNS": "capacity.usage._frame",
    "SUM_COLUMNS": "capacity.usage._frame",
    "USAGE_COLUMNS": "capacity.usage._frame",
    "UsageMeta": "capacity.usage._frame",
    "DailyRow": "capacity.usage._analysis",
    "Stats": "capacity.usage._analysis",
    "UsageSummary": "capacity.usage._analysis",
    "per_minute": "capacity.usage._analysis",
    "quota_tokens": "capacity.usage._analysis",
    "summarize_usage": "capacity.usage._analysis",
    "Forecast": "capacity.usage._forecast",
    "fit_growth": "capacity.usage._forecast",
    "forecast_exhaustion": "capacity.usage._forecast",
    "UsageFileError": "capacity.usage._io",
    "read_usage": "capacity.usage._io",
    "write_usage": "capacity.usage._io",
    "SyntheticTraffic": "capacity.usage._synthetic",
    "synthetic_usage": "capacity.usage._synthetic",
    "usage_figures": "capacity.usage._figures",
    "HOURS_PER_MONTH": "capacity.usage._cost",
    "RESERVED_TERMS": "capacity.usage._cost",
    "MonthlyCost": "capacity.usage._cost",
    "Price": "capacity.usage._cost",
    "PriceError": "capacity.usage._cost",
    "PriceTable": "capacity.usage._cost",
    "load_prices": "capacity.usage._cost",
    "monthly_cost": "capacity.usage._cost",
    "LONG_PROMPT_TOKENS": "capacity.usage._requests",
    "REQUEST_COLUMNS": "capacity.usage._requests",
    "REQUEST_SCHEMA": "capacity.usage._requests",
    "LoadReport": "capacity.usage._requests",
    "RequestTable": "capacity.usage._requests",
    "TrafficSourceError": "capacity.usage._requests",
    "request_arrays": "capacity.usage._requests",
    "SOURCE_FORMATS": "capacity.usage._load",
    "ObjectSource": "capacity.usage._load",
    "load_requests": "capacity.usage._load",
    "Distribution": "capacity.usage._traffic_stats",
    "ModelTraffic": "capacity.usage._traffic",
    "RateStats": "capacity.usage._traffic_stats",
    "TrafficAnalysis": "capacity.usage._traffic",
    "analyze_traffic": "capacity.usage._traffic",
    "percentile_of_counts": "capacity.usage._traffic_stats",
    "TRAFFIC_GROUPINGS": "capacity.usage._aggregate",
    "aggregate_traffic": "capacity.usage._traffic",
    "duckdb_connect": "capacity.usage._duck",
    "SyntheticLogs": "capacity.usage._synthetic_logs",
    "write_invocation_logs": "capacity.usage._synthetic_logs",
    "TEMPLATES": "capacity.usage._templates",
    "TrafficTemplate": "capacity.usage._templates",
    "scale_trace": "capacity.usage._templates",
    "traffic_template": "capacity.usage._templates",
    "model_slug": "capacity.usage._traffic_figures",
    "plot_token_distributions": "capacity.usage._traffic_figures",
    "plot_traffic_rates": "capacity.usage._traffic_figures",
    "traffic_figures": "capacity.usage._traffic_figures",
}

if TYPE_CHECKING:
    from capacity.usage._aggregate import GROUPINGS as TRAFFIC_GROUPINGS
    from capacity.usage._analysis import (
        DailyRow,
        Stats,
        UsageSummary,
        per_minute,
        quota_tokens,
        summarize_usage,
    )
    from capacity.usage._cost import (
        HOURS_PER_MONTH,
        RESERVED_TERMS,
        MonthlyCost,
        Price,
        PriceError,
        PriceTable,
        load_prices,
        monthly_cost,
    )
    from capacity.usage._duck import connect as duckdb_connect
    from capacity.usage._figures import usage_figures
    from capacity.usage._forecast import Forecast, fit_growth, forecast_exhaustion
    from capacity.usage._frame import LATENCY_COLUMNS, SUM_COLUMNS, USAGE_COLUMNS, UsageMeta
    from capacity.usage._io import UsageFileError, read_usage, write_usage
    from capacity.usage._load import SOURCE_FORMATS, ObjectSource, load_requests
    from capacity.usage._requests import (
        LONG_PROMPT_TOKENS,
        REQUEST_COLUMNS,
        REQUEST_SCHEMA,
        LoadReport,
        RequestTable,
        TrafficSourceError,
        request_arrays,
    )
    from capacity.usage._synthetic import SyntheticTraffic, synthetic_usage
    from capacity.usage._synthetic_logs import SyntheticLogs, write_invocation_logs
    from capacity.usage._templates import (
        TEMPLATES,
        TrafficTemplate,
        scale_trace,
        traffic_template,
    )
    from capacity.usage._traffic import ModelTraffic, TrafficAnalysis, analyze_traffic
    from capacity.usage._traffic_figures import (
        model_slug,
        plot_token_distributions,
        plot_traffic_rates,
        traffic_figures,
    )
    from capacity.usage._traffic_stats import Distribution, RateStats, percentile_of_counts

__all__ = [
    "HOURS_PER_MONTH",
    "LATENCY_COLUMNS",
    "LONG_PROMPT_TOKENS",
    "REQUEST_COLUMNS",
    "REQUEST_SCHEMA",
    "RESERVED_TERMS",
    "SOURCE_FORMATS",
    "SUM_COLUMNS",
    "TEMPLATES",
    "TRAFFIC_GROUPINGS",
    "USAGE_COLUMNS",
    "DailyRow",
    "Distribution",
    "Forecast",
    "LoadReport",
    "ModelTraffic",
    "MonthlyCost",
    "ObjectSource",
    "Price",
    "PriceError",
    "PriceTable",
    "RateStats",
    "RequestTable",
    "Stats",
    "SyntheticLogs",
    "SyntheticTraffic",
    "TrafficAnalysis",
    "TrafficSourceError",
    "TrafficTemplate",
    "UsageFileError",
    "UsageMeta",
    "UsageSummary",
    "aggregate_traffic",
    "analyze_traffic",
    "duckdb_connect",
    "fit_growth",
    "forecast_exhaustion",
    "load_prices",
    "load_requests",
    "model_slug",
    "monthly_cost",
    "per_minute",
    "percentile_of_counts",
    "plot_token_distributions",
    "plot_traffic_rates",
    "quota_tokens",
    "read_usage",
    "request_arrays",
    "scale_trace",
    "summarize_usage",
    "synthetic_usage",
    "traffic_figures",
    "traffic_template",
    "usage_figures",
    "write_invocation_logs",
    "write_usage",
]


_RENAMED = {"TRAFFIC_GROUPINGS": "GROUPINGS", "duckdb_connect": "connect"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capacity.usage' has no attribute {name!r}")
    return getattr(importlib.import_module(module), _RENAMED.get(name, name))
