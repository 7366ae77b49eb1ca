"""Does the exhaustion forecast recover a known growth rate? Coverage over seeds.

For each growth rate and seed: two weeks of synthetic per-minute traffic (daily cycle, Poisson
arrivals, a throttle episode) are summarized; then the following 120 days are generated and the
first day whose p99 minute reaches 80 % of the quota is the truth. Counts how often the growth
interval contains the true rate and the forecast's date interval contains the true day.

    python benchmarks/forecast_coverage.py              # 20 seeds, 3 %/day and 8 %/day
    python benchmarks/forecast_coverage.py --seeds 50
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime, timedelta

from capacity.usage import SyntheticTraffic, UsageMeta, summarize_usage, synthetic_usage
from capacity.usage._analysis import daily_rows

END = datetime(2026, 11, 1, tzinfo=UTC)
CASES = ((0.03, 300_000.0), (0.08, 900_000.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    n = parser.parse_args().seeds
    for growth, quota in CASES:
        grow = cross = 0
        widths = []
        for seed in range(n):
            truth = SyntheticTraffic(growth_per_day=growth, seed=seed, quota_tpm=2 * quota)
            meta = UsageMeta("m", "us-west-2", quota_tpm=quota)
            fc = summarize_usage(synthetic_usage(truth, END), meta).forecast
            assert fc is not None
            future = dataclasses.replace(truth, days=120, throttle_day=None, seed=seed + 100)
            rows = daily_rows(synthetic_usage(future, END + timedelta(days=106)), meta)
            actual = next(r.day for r in rows if r.p99_tpm >= 0.8 * quota)
            lo, hi = fc.crossing_interval
            assert lo is not None and hi is not None
            grow += fc.growth_ci[0] <= growth <= fc.growth_ci[1]
            cross += lo <= actual <= hi
            widths.append((hi - lo).days)
        print(
            f"growth {growth:.0%}/day: growth interval covers the truth {grow}/{n}; the real "
            f"crossing day is inside the date interval {cross}/{n}; median interval "
            f"{sorted(widths)[n // 2]} days"
        )


if __name__ == "__main__":
    main()
