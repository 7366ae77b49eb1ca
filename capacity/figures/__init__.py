"""Figures of request records, fitted models and quota plans (matplotlib, no pyplot).

Every function returns a ``matplotlib.figure.Figure`` built with the object API (nothing is
shown or kept in pyplot's registry); ``save_figure`` writes it as PNG or SVG.

- ``plot_all_metrics`` — the seed's per-level dashboard (mosaic ``"ABC;DEF;GGI"``);
- ``plot_tokens_and_calls`` — tokens/s histogram with its statistics, and requests in flight;
- ``plot_scaling`` — per-request tokens/s and TTFT vs concurrency, with fitted curves;
- ``plot_throughput`` — system output throughput, the USL fit, its band and the knees;
- ``plot_capacity`` — supported users vs TPM quota per constraint, current and requested quota;
- ``plot_quota_ask`` — the chart a manager reads: today's and the requested quota on one
  supported-users curve, each raise as its own step, the latency at the target beside it;
- ``plot_throttle_curve`` — the same chart when the quota is sized from real traffic: the share
  of the target's requests each TPM throttles, replayed, today's and the requested quota marked;
- ``plot_twin`` — a calibrated twin's forecasts with their bands beside the probe.
"""

from __future__ import annotations

from capacity.figures._common import new_figure, png_bytes, save_figure
from capacity.figures.distributions import plot_all_metrics, plot_tokens_and_calls
from capacity.figures.justification import plot_quota_ask
from capacity.figures.planning import plot_capacity
from capacity.figures.scaling import plot_scaling, plot_throughput
from capacity.figures.throttles import plot_throttle_curve
from capacity.figures.twin import plot_twin

__all__ = [
    "new_figure",
    "plot_all_metrics",
    "plot_capacity",
    "plot_quota_ask",
    "plot_scaling",
    "plot_throttle_curve",
    "plot_throughput",
    "plot_tokens_and_calls",
    "plot_twin",
    "png_bytes",
    "save_figure",
]
