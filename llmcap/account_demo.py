"""The account flow, offline, on the demo's own answer: the quota read from the emulator's Service
Quotas API with real boto3, requests of the answer's workload read back through the emulator's
CloudWatch GetMetricData, two weeks of SYNTHETIC usage of that workload (labelled as such)
summarized and forecast, the answer's plan and cost, and the increase request it computes —
printed as a dry run, then filed against the emulator and followed by id.

``run_account_demo(out_dir, region, plan, request)`` takes the demo's ``CapacityPlan`` (its
quota, model id, workload and objective, and the users it serves today) and ``QuotaRequest``
(the TPM to ask for the target) and computes no capacity figure of its own, so this section
states the same users, quota, Region and workload as the demo's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from rich.console import Console

from account import (
    Connection,
    connect,
    plan_increase,
    read_model_quotas,
    request_status,
    submit_increase,
)
from account.cloudwatch import fetch_usage
from capacity.planning import CapacityPlan, QuotaRequest
from capacity.usage import (
    SyntheticTraffic,
    UsageMeta,
    load_prices,
    monthly_cost,
    summarize_usage,
    synthetic_usage,
    usage_figures,
    write_usage,
)
from emulator import Emulator

EMULATOR_PROFILE = "fast"  # the requests only show the CloudWatch path: no need to wait
TRAFFIC_REQUESTS = 6
SYNTHETIC_GROWTH_PER_DAY = 0.03
SYNTHETIC_BUSIEST_SHARE = 0.6  # the synthetic busiest minute today, as a share of the TPM quota


@dataclass(frozen=True)
class AccountDemo:
    """What the section showed: the TPM quota read back, the requests CloudWatch counted, the
    users today and the TPM filed (both the demo's), the request id."""

    out_dir: Path
    quota_tpm: float
    quota_code: str
    cloudwatch_requests: int
    users_today: int
    requested_tpm: int
    request_id: str


def run_account_demo(
    out_dir: Path,
    region: str,
    plan: CapacityPlan,
    request: QuotaRequest,
    console: Console | None = None,
) -> AccountDemo:
    """Run the offline account flow for the demo's ``plan`` (at the current quota) and
    ``request`` (for the target users) in ``region``, writing usage.parquet, summary.md and
    figures under ``out_dir``. Binds only 127.0.0.1."""
    con = console or Console(width=120)
    out_dir.mkdir(parents=True, exist_ok=True)
    quota, workload = plan.quota, plan.workload
    model_id = quota.model_id or request.model_id
    if model_id is None:
        raise ValueError("the plan's Quota names no model_id: the account flow needs one")
    tpd = None if quota.tpd is None else int(quota.tpd)
    rpm = None if quota.rpm is None else int(quota.rpm)
    with Emulator(EMULATOR_PROFILE, tpm=int(quota.runtime_tpm), rpm=rpm, tpd=tpd) as emu:
        conn = connect(region, endpoint_url=emu.url, offline=True)
        con.rule(f"Account (offline): {model_id} in {region}, emulator on {emu.url}")
        con.print("Quotas — Service Quotas API served by the emulator, read with boto3:",
                  highlight=False)  # fmt: skip
        mq = read_model_quotas(conn, model_id)
        for q in mq.quotas:
            value = "" if q.value is None else f"{q.value:,.0f}"
            _say(con, f"  {q.code}  {q.name}: {value} (default {q.default or 0:,.0f})")
        for note in mq.notes:
            _say(con, f"  note: {note}")
        tpm, code = mq.value("tpm"), mq.code("tpm")
        assert tpm is not None and tpm == quota.tpm and code is not None  # the demo's quota

        counted = _cloudwatch(con, conn, emu, plan)
        _synthetic(con, out_dir, model_id, region, plan)

        con.rule("The demo's answer at this quota, and what to request")
        _say(con, f"today ({quota.tpm:,.0f} TPM): {plan.answer()}")
        price = load_prices().price(model_id, region)
        cost = monthly_cost(
            price, plan.peak_requests_per_min, input_tokens=workload.input_tokens,
            output_tokens=workload.output_tokens, cache_read_tokens=workload.cache_read_tokens,
            cache_write_tokens=workload.cache_write_tokens,
            peak_to_average=workload.peak_to_average,
            active_hours_per_day=workload.active_hours_per_day,
        )  # fmt: skip
        _say(con, f"cost of that load in {region}: {cost.describe()}")
        _say(
            con,
            f"for {request.target_users:,.0f} users: ask for {request.runtime_tpm:,} TPM ({code})",
        )

        con.rule("Increase request (dry run, then filed against the emulator)")
        inc = plan_increase(conn, code, float(request.runtime_tpm))
        _say(con, f"  {inc.cli_text()}")
        filed = submit_increase(conn, inc)
        status = request_status(conn, filed.request_id)
        _say(con, f"  filed: {status.request_id} {status.status} "
                  f"(desired {status.desired_value:,.0f})")  # fmt: skip
    _say(con, f"wrote {out_dir}/usage.parquet, summary.md and figures")
    return AccountDemo(out_dir, tpm, code, counted, plan.users_whole, request.runtime_tpm,
                       status.request_id)  # fmt: skip


def _say(con: Console, text: str) -> None:
    con.print(text, highlight=False, markup=False, soft_wrap=True)


def _cloudwatch(con: Console, conn: Connection, emu: Emulator, plan: CapacityPlan) -> int:
    """Send ``TRAFFIC_REQUESTS`` requests of the plan's workload to the emulator (real boto3)
    and read them back through its CloudWatch GetMetricData (``account.cloudwatch``, the code
    of ``llmcap usage``); returns the Invocations it counted."""
    workload = plan.workload
    prompt_tokens = max(1, round(workload.input_tokens) - emu.profile.prompt_overhead_tokens)
    text = "x" + " x" * (prompt_tokens - 1)  # one token per " x" under the emulator's rule
    output_tokens = max(1, round(workload.output_tokens))  # this profile writes max_tokens
    client: Any = boto3.client(
        "bedrock-runtime", region_name=conn.region, endpoint_url=emu.url,
        aws_access_key_id="llmcap-offline", aws_secret_access_key="llmcap-offline",
        config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip
    model_id = plan.quota.model_id
    for _ in range(TRAFFIC_REQUESTS):
        client.converse(
            modelId=model_id, messages=[{"role": "user", "content": [{"text": text}]}],
            inferenceConfig={"maxTokens": output_tokens},
        )  # fmt: skip
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    frame, _, _ = fetch_usage(conn, str(model_id), 10 / 1440, end=end)
    n = int(frame["invocations"].sum())
    con.print(
        f"CloudWatch — GetMetricData served by the emulator from {TRAFFIC_REQUESTS} requests "
        "of the answer's workload sent to it with boto3:", highlight=False,
    )  # fmt: skip
    per = max(n, 1)
    _say(con, f"  {n} invocations, {frame['input_tokens'].sum() / per:,.0f} input and "
              f"{frame['output_tokens'].sum() / per:,.0f} output tokens per request, "
              f"{frame['estimated_tpm_quota_usage'].sum():,.0f} quota tokens")  # fmt: skip
    return n


def _synthetic(con: Console, out_dir: Path, model_id: str, region: str, plan: CapacityPlan) -> None:
    """Two weeks of SYNTHETIC per-minute usage of the plan's workload against its TPM quota,
    summarized and forecast: the busiest minute today at ``SYNTHETIC_BUSIEST_SHARE`` of it."""
    w, tpm = plan.workload, plan.quota.runtime_tpm
    per_request = w.input_tokens + w.cache_write_tokens + plan.burndown * w.output_tokens
    days = 14
    # rpm(t) = base × (1 + g)^t × (1 + amplitude·cos …): its top on the last day is the share
    amplitude = SyntheticTraffic.amplitude
    top = (1 + SYNTHETIC_GROWTH_PER_DAY) ** days * (1 + amplitude)
    base_rpm = SYNTHETIC_BUSIEST_SHARE * tpm / per_request / top
    truth = SyntheticTraffic(
        days=days, base_rpm=base_rpm, growth_per_day=SYNTHETIC_GROWTH_PER_DAY,
        input_tokens=w.input_tokens, output_tokens=w.output_tokens,
        cache_read_tokens=w.cache_read_tokens, cache_write_tokens=w.cache_write_tokens,
        burndown=plan.burndown, quota_tpm=tpm, seed=3,
    )  # fmt: skip
    con.rule(
        f"Usage: {days} days of SYNTHETIC traffic of this workload "
        f"(+{SYNTHETIC_GROWTH_PER_DAY:.0%}/day, busiest minutes ~{SYNTHETIC_BUSIEST_SHARE:.0%} "
        "of the TPM quota today)"
    )
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    frame = synthetic_usage(truth, end)
    meta = UsageMeta(model_id, region, quota_tpm=tpm, quota_rpm=plan.quota.rpm,
                     burndown=plan.burndown, source="synthetic (demo)")  # fmt: skip
    summary = summarize_usage(frame, meta)
    write_usage(out_dir / "usage.parquet", frame, meta)
    (out_dir / "summary.md").write_text(summary.markdown())
    usage_figures(frame, summary, out_dir)
    con.print(summary.markdown(), highlight=False, markup=False)
