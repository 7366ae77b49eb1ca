"""The seam: what ``bench`` writes is exactly what ``capacity`` reads (DESIGN §2, §3.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bench.records
import capacity.records._schema
from bench import Endpoint, SweepConfig, read_jsonl, run_sweep
from capacity.records._load import load_records
from emulator import Emulator


def test_record_schemas_agree_column_for_column() -> None:
    assert list(bench.records.RECORD_COLUMNS.items()) == list(
        capacity.records._schema.RECORD_COLUMNS.items()
    )
    assert bench.records.STATUSES == capacity.records._schema.STATUSES


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
    # capacity recomputes the derived metrics from the raw offsets: they must agree with bench's
    ok = df.sort_values("request_id").reset_index(drop=True)
    ref = written.sort_values("request_id").reset_index(drop=True)
    for col in ("ttft_s", "ttlt_s", "tpot_s", "tps"):
        assert np.allclose(ok[col], ref[col], equal_nan=True), col
