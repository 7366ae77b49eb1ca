"""The account flow, offline: quotas read from the emulator's Service Quotas API with real boto3,
two weeks of synthetic usage (labelled as such) summarized and forecast, the plan from that
usage, and the increase request — printed as a dry run, then filed against the emulator and
followed by id. Call ``run_account_demo(out_dir)`` (e.g. from ``llmcap demo``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from account import connect, plan_increase, read_model_quotas, request_status
from account.requests import submit_increase
from capacity.planning import Quota, plan_capacity, required_quota
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

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"
REGION = "us-west-2"
QUOTA_TPM = 300_000


def run_account_demo(out_dir: Path, console: Console | None = None) -> Path:
    """Run the offline account flow, writing usage.parquet, summary.md and figures under
    ``out_dir``; returns ``out_dir``. Binds only 127.0.0.1."""
    con = console or Console(width=120)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Emulator(tpm=QUOTA_TPM) as emu:
        conn = connect(REGION, endpoint_url=emu.url, offline=True)
        con.rule("Quotas (Service Quotas API served by the emulator, read with boto3)")
        mq = read_model_quotas(conn, MODEL)
        for q in mq.quotas:
            value = "" if q.value is None else f"{q.value:,.0f}"
            con.print(f"  {q.code}  {q.name}: {value} (default {q.default or 0:,.0f})",
                      highlight=False, markup=False)  # fmt: skip
        tpm = mq.value("tpm")
        code = mq.code("tpm")
        assert tpm is not None and code is not None

        con.rule("Usage: 14 days of SYNTHETIC per-minute traffic (3 %/day growth)")
        truth = SyntheticTraffic(growth_per_day=0.03, quota_tpm=tpm, seed=3)
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        frame = synthetic_usage(truth, end)
        meta = UsageMeta(MODEL, REGION, quota_tpm=tpm, source="synthetic (demo)")
        summary = summarize_usage(frame, meta)
        write_usage(out_dir / "usage.parquet", frame, meta)
        (out_dir / "summary.md").write_text(summary.markdown())
        usage_figures(frame, summary, out_dir)
        con.print(summary.markdown(), highlight=False, markup=False)

        con.rule("Plan from the measured usage")
        workload = summary.workload(max_tokens=1000)
        plan = plan_capacity(Quota(tpm, model_id=MODEL), workload)
        con.print(f"at the current quota: {plan.answer()}", highlight=False, markup=False)
        price = load_prices().price(MODEL, REGION)
        cost = monthly_cost(
            price, plan.peak_requests_per_min, input_tokens=workload.input_tokens,
            output_tokens=workload.output_tokens, cache_read_tokens=workload.cache_read_tokens,
            cache_write_tokens=workload.cache_write_tokens,
            peak_to_average=workload.peak_to_average,
        )  # fmt: skip
        con.print(f"cost of that load: {cost.describe()}", highlight=False, markup=False)
        target = 2 * plan.users
        request = required_quota(workload, target, model_id=MODEL, scope=mq.scope)  # type: ignore[arg-type]
        want = next(line.value for line in request.lines if line.kind == "tpm")
        con.print(f"for {target:,.0f} users: ask for {want:,} TPM", highlight=False)

        con.rule("Increase request (dry run, then filed against the emulator)")
        inc = plan_increase(conn, code, float(want))
        con.print(f"  {inc.cli_text()}", highlight=False, markup=False)
        filed = submit_increase(conn, inc)
        status = request_status(conn, filed.request_id)
        line = f"  filed: {status.request_id} {status.status} (desired {status.desired_value:,.0f})"
        con.print(line, highlight=False, markup=False)
    con.print(f"wrote {out_dir}/usage.parquet, summary.md and figures", highlight=False)
    return out_dir
