"""Loading records: formats, the seed's CSV, and every validation error path."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from capacity.errors import RecordsError
from capacity.records import RECORD_COLUMNS, load_records
from capacity.records._validate import is_validated, validate_records
from tests.capacity.record_factory import frame, rec


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_parquet_and_csv_give_the_same_typed_records(tmp_path: Path) -> None:
    rows = [rec(), rec(start_s=1.0, first_token_s=1.2, last_token_s=3.0, end_s=3.1)]
    a = load_records(write_jsonl(tmp_path / "a.jsonl", rows))
    frame(*rows).to_parquet(tmp_path / "b.parquet")
    frame(*rows).to_csv(tmp_path / "c.csv", index=False)
    b, c = load_records(tmp_path / "b.parquet"), load_records(tmp_path / "c.csv")
    for got in (a, b, c):
        assert {k: str(v) for k, v in got.dtypes.items()} == RECORD_COLUMNS
        assert list(got.columns) == list(RECORD_COLUMNS)
        assert got["ttft_s"].tolist() == pytest.approx([0.3, 0.2])
        assert is_validated(got)
    both = load_records([tmp_path / "a.jsonl", tmp_path / "b.parquet"])
    assert len(both) == 4 and both.attrs["notes"]


def test_run_directory_prefers_an_up_to_date_parquet(tmp_path: Path) -> None:
    run = tmp_path / "run-1"
    run.mkdir()
    write_jsonl(
        run / "records.jsonl",
        [rec(), rec(start_s=5.0, first_token_s=5.3, last_token_s=6.0, end_s=6.1)],
    )
    frame(rec()).to_parquet(run / "records.parquet")
    os.utime(run / "records.jsonl", ns=(1, 1))
    got = load_records(run)
    assert len(got) == 1 and got["run_id"].tolist() == ["r1"]
    os.utime(run / "records.parquet", ns=(0, 0))  # older: an unfinished level
    got = load_records(run)
    assert len(got) == 2
    assert any("older" in n for n in got.attrs["notes"])


def test_absent_optional_columns_get_documented_defaults(tmp_path: Path) -> None:
    minimal = {
        k: v
        for k, v in rec().items()
        if k
        in (
            "start_s",
            "first_token_s",
            "last_token_s",
            "end_s",
            "output_tokens",
            "status",
            "level",
            "input_tokens",
        )
    }
    got = load_records(write_jsonl(tmp_path / "run7.jsonl", [minimal, minimal]))
    assert got["run_id"].tolist() == ["run7", "run7"]
    assert got["request_id"].tolist() == ["0", "1"]
    assert got["prompt_label"].tolist() == ["43", "43"]
    assert got["active_at_start"].tolist() == [0, 0]
    assert got["retries"].tolist() == [0, 0]
    notes = " ".join(got.attrs["notes"])
    assert "defaults" in notes and "prompt_label" in notes


def test_seed_format_csv_is_mapped_to_offsets(tmp_path: Path) -> None:
    seed = pd.DataFrame(
        {
            "request_start": ["2025-01-01T00:00:00", "2025-01-01T00:00:01.5"],
            "request_end": ["2025-01-01T00:00:03", "2025-01-01T00:00:04"],
            "time_to_first_token": [0.38, 0.30],
            "time_to_last_token": [2.96, 2.50],
            "time_per_output_token": [(2.96 - 0.38) / 349, (2.50 - 0.30) / 349],
            "tokens_per_second": [349 / 2.58, 349 / 2.20],
            "num_concurrent_calls": [2, 2],
            "input_tokens": [43, 43],
            "output_tokens": [350, 350],
            "temperature": [0.5, 0.5],
            "model_id": ["us.meta.llama3-3-70b-instruct-v1:0"] * 2,
            "response_text": ["…", "…"],
        }
    )
    seed.to_csv(tmp_path / "seed.csv", index=False)
    got = load_records(tmp_path / "seed.csv")
    assert got["start_s"].tolist() == [0.0, 1.5]
    assert got["first_token_s"].tolist() == pytest.approx([0.38, 1.8])
    assert got["end_s"].tolist() == [3.0, 4.0]
    assert got["level"].tolist() == [2.0, 2.0]
    assert got["status"].tolist() == ["ok", "ok"]
    assert got["tps"].tolist() == pytest.approx([349 / 2.58, 349 / 2.20])
    assert got["active_at_start"].tolist() == [0, 1]
    assert any("not used: response_text" in n for n in got.attrs["notes"])


def test_seed_single_token_tps_is_replaced_by_the_rule(tmp_path: Path) -> None:
    seed = pd.DataFrame(
        {
            "request_start": ["2025-01-01T00:00:00"],
            "time_to_first_token": [0.3],
            "time_to_last_token": [0.3],
            "time_per_output_token": [0.0],
            "tokens_per_second": [np.inf],
            "num_concurrent_calls": [1],
            "output_tokens": [1],
        }
    )
    seed.to_csv(tmp_path / "one.csv", index=False)
    got = load_records(tmp_path / "one.csv")
    assert np.isnan(got["tps"][0]) and np.isnan(got["tpot_s"][0])
    notes = " ".join(got.attrs["notes"])
    assert "replaced by NaN" in notes and "fewer than 2 output tokens" in notes


def test_rule_notes_count_what_was_handled() -> None:
    got = validate_records(
        frame(
            rec(output_tokens=np.nan),
            rec(output_tokens=1.0),
            rec(last_token_s=0.3),
            rec(tokens_estimated=True),
            rec(
                status="throttled",
                first_token_s=np.nan,
                last_token_s=np.nan,
                end_s=np.nan,
                output_tokens=np.nan,
            ),
        )
    )
    notes = " | ".join(got.attrs["notes"])
    for text in (
        "ok requests without output-token usage (tpot_s and tps are NaN): 1",
        "ok requests with fewer than 2 output tokens (tpot_s and tps are NaN): 1",
        "ok requests delivered in a single chunk (tpot_s 0, tps NaN): 1",
        "requests with estimated token counts (tokens_estimated): 1",
        "failed requests without end_s (in flight until their last known time): 1",
    ):
        assert text in notes, notes
    assert not np.isinf(got["tps"]).any()


BAD_ROWS: list[tuple[dict[str, Any], str]] = [
    ({"start_s": None}, "start_s is missing"),
    ({"start_s": -1.0}, "start_s is negative"),
    ({"end_s": "inf"}, "never inf"),
    ({"first_token_s": -0.1}, "first_token_s (-0.1) is before start_s"),
    ({"last_token_s": 0.2}, "last_token_s (0.2) is before first_token_s"),
    ({"end_s": 2.0}, "end_s (2.0) is before last_token_s"),
    ({"end_s": None}, "status is ok but end_s is null"),
    ({"first_token_s": None}, "first_token_s is null"),
    ({"status": "weird"}, "status is 'weird'"),
    ({"level": None}, "level is missing"),
    ({"start_s": "soon"}, "column start_s = 'soon' is not a number"),
    ({"output_tokens": -3}, "output_tokens is negative"),
    ({"output_tokens": 3.5}, "output_tokens = 3.5 is not a whole number"),
    ({"batch": 1.5}, "column batch = 1.5 is not a whole number"),
    ({"batch": None}, "column batch is"),
    ({"tokens_estimated": "maybe"}, "tokens_estimated = 'maybe' is not true/false"),
    ({"ttft_s": 0.9}, "ttft_s is 0.9 but first_token_s − start_s gives 0.3"),
    ({"tps": 1.0}, "tps is 1.0 but 1/tpot_s gives"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ROWS)
def test_every_validation_error_names_file_line_column_and_fix(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [rec(), rec(**change), rec(**change)])
    with pytest.raises(RecordsError) as info:
        load_records(path)
    text = str(info.value)
    assert text.startswith(f"{path}: line 2: "), text
    assert message in text, text
    assert "(and 1 more rows)" in text
    assert text.count(";") >= 1  # the fix follows the problem


def test_derived_value_without_its_offsets_is_an_error() -> None:
    bad = rec(status="error", first_token_s=None, last_token_s=None, end_s=1.0, ttft_s=0.3)
    with pytest.raises(RecordsError, match="ttft_s is given but its offsets are null"):
        validate_records(frame(rec(), bad), source="x.csv", locate=lambda i: f"line {i + 2}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"start_s": 0}\n{"start_s": \n{"start_s": 1}\n', "line 2: not valid JSON"),
        ("[1, 2]\n", "line 1: a JSON list, not an object"),
        ("", "no records (the file is empty)"),
    ],
)
def test_malformed_jsonl(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(RecordsError, match=re.escape(message)):
        load_records(path)


def test_torn_last_line_from_a_crash_is_skipped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec()) + "\n" + json.dumps(rec())[:40])
    got = load_records(path)
    assert len(got) == 1
    assert any("incomplete" in n for n in got.attrs["notes"])


def test_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec()) + "\n\n" + json.dumps(rec(start_s=-5.0)) + "\n")
    with pytest.raises(RecordsError, match="line 3: start_s is negative"):
        load_records(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such file or directory"),
        ("records.txt", "x", "unknown records format '.txt'"),
        ("broken.parquet", "not parquet", "not a readable Parquet file"),
        ("cols.csv", "a,b\n1,2\n", "missing column(s) start_s"),
        (
            "seed.csv",
            "time_to_first_token,num_concurrent_calls\n0.3,1\n",
            "seed-format CSV without column(s) time_to_last_token",
        ),
        (
            "when.csv",
            "time_to_first_token,time_to_last_token,output_tokens,num_concurrent_calls,"
            "request_start\n0.3,2,350,1,yesterday\n",
            "line 2: request_start = 'yesterday'",
        ),
    ],
)
def test_bad_sources(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(RecordsError) as info:
        load_records(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_directory_without_records_and_empty_path_list(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match=r"no records\.jsonl or records\.parquet"):
        load_records(tmp_path)
    with pytest.raises(RecordsError, match="no records given"):
        load_records([])
