"""The seam: ``bench`` writes the raw columns of ``contracts.records`` and ``capacity`` derives
every metric from them (docs/architecture.md, "Records")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import bench.records
import capacity.records._schema
from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from capacity.errors import RecordsError
from capacity.records import load_records
from contracts.records import RAW_COLUMNS, STATUSES
from emulator import Emulator


def test_one_schema_raw_columns_in_bench_derived_ones_in_capacity() -> None:
    assert bench.records.RECORD_COLUMNS is RAW_COLUMNS
    analysis = capacity.records._schema.RECORD_COLUMNS
    assert {k: v for k, v in analysis.items() if k in RAW_COLUMNS} == RAW_COLUMNS
    assert set(analysis) - set(RAW_COLUMNS) == set(capacity.records._schema.DERIVED_COLUMNS)
    assert capacity.records._schema.STATUSES is STATUSES


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with Emulator("fast", tpm=2_000) as emu:  # some throttles, so failure rows are covered
        config = SweepConfig(
            endpoint=Endpoint(endpoint_url=emu.url), prompt="small", mode="interval",
            levels=(1, 4), batches=4, interval_s=0.05, max_tokens=40,
            out=tmp_path_factory.mktemp("runs"), progress=False,
        )  # fmt: skip
        return run_sweep(config)


@pytest.mark.parametrize("source", ["dir", "records.jsonl", "records.parquet"])
def test_capacity_loads_every_form_bench_writes(run_dir: Path, source: str) -> None:
    path = run_dir if source == "dir" else run_dir / source
    df = load_records(path)
    written = read_jsonl(run_dir / "records.jsonl")
    assert len(df) == len(written) == 4 + 16
    assert set(df.status) <= set(capacity.records._schema.STATUSES)
    # bench writes no derived metric; capacity derives them from the raw offsets
    assert not set(capacity.records._schema.DERIVED_COLUMNS) & set(written.columns)
    ok = df.sort_values("request_id").reset_index(drop=True)
    ref = written.sort_values("request_id").reset_index(drop=True)
    assert np.allclose(ok["ttft_s"], ref["first_token_s"] - ref["start_s"], equal_nan=True)
    assert np.allclose(ok["lateness_s"], ref["start_s"] - ref["scheduled_s"], equal_nan=True)


def test_run_dirs_written_with_derived_columns_still_load(run_dir: Path, tmp_path: Path) -> None:
    # Runs from before the one schema carried lateness_s and ttft_s … tps in records.jsonl.
    new = load_records(run_dir / "records.jsonl")
    old_rows = []
    for line in (run_dir / "records.jsonl").read_text().splitlines():
        row = json.loads(line)
        match = new[new.request_id == row["request_id"]].iloc[0]
        for col in ("lateness_s", "ttft_s", "ttlt_s", "e2e_s", "tpot_s", "tps"):
            value = float(match[col])
            row[col] = None if math.isnan(value) else value
        old_rows.append(json.dumps(row))
    old = tmp_path / "records.jsonl"
    old.write_text("\n".join(old_rows) + "\n")
    again = load_records(old)
    assert np.allclose(again["tps"], new["tps"], equal_nan=True)


def test_max_gap_is_written_and_old_runs_without_it_load(run_dir: Path, tmp_path: Path) -> None:
    new = load_records(run_dir)
    ok = new[new.status == "ok"]
    assert ok.max_gap_s.notna().all()  # 40 tokens: every ok request has consecutive chunks
    # the longest gap is at least the mean one, and inside the stream
    assert (ok.max_gap_s >= ok.tpot_s - 1e-9).all()
    assert (ok.max_gap_s <= ok.ttlt_s - ok.ttft_s + 1e-9).all()
    assert new[new.status != "ok"].max_gap_s.isna().all()
    # runs written before the column existed load, with the gap unknown
    rows = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    for parquet in (False, True):
        old_dir = tmp_path / f"old{int(parquet)}"
        old_dir.mkdir()
        old_rows = [{k: v for k, v in row.items() if k != "max_gap_s"} for row in rows]
        if parquet:
            frame = read_jsonl(run_dir / "records.jsonl").drop(columns="max_gap_s")
            frame.to_parquet(old_dir / "records.parquet", index=False)
        else:
            (old_dir / "records.jsonl").write_text("\n".join(map(json.dumps, old_rows)) + "\n")
        old = load_records(old_dir)
        assert len(old) == len(new) and old.max_gap_s.isna().all()
        assert np.allclose(old["tps"].sort_values(), new["tps"].sort_values(), equal_nan=True)


def test_the_client_measures_itself_and_old_runs_without_it_load(
    run_dir: Path, tmp_path: Path
) -> None:
    new = load_records(run_dir)
    ok = new[new.status == "ok"]
    # every request the engine sent carries the client's measure of itself
    assert ok.loop_lag_s.notna().all() and ok.client_cpu_share.notna().all()
    assert (new.loop_lag_s.dropna() >= 0).all() and (new.client_cpu_share.dropna() >= 0).all()
    rows = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    dropped = ("loop_lag_s", "client_cpu_share")
    old_rows = [{k: v for k, v in row.items() if k not in dropped} for row in rows]
    (old_dir / "records.jsonl").write_text("\n".join(map(json.dumps, old_rows)) + "\n")
    old = load_records(old_dir)
    assert len(old) == len(new) and old.loop_lag_s.isna().all()
    assert old.client_cpu_share.isna().all()
    bad = [{**row, "loop_lag_s": -1.0} for row in rows]
    (old_dir / "records.jsonl").write_text("\n".join(map(json.dumps, bad)) + "\n")
    with pytest.raises(RecordsError, match="loop_lag_s is -1"):
        load_records(old_dir)
