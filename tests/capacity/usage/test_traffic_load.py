"""Loading real traffic: invocation logs (and CloudWatch exports of them), traces and llmcap runs
into the normalised request table — against the truth the synthetic logs were written from."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity.errors import CapacityError
from capacity.records import SyntheticPrompt, synthetic_records
from capacity.usage import (
    REQUEST_COLUMNS,
    REQUEST_SCHEMA,
    SyntheticLogs,
    TrafficSourceError,
    load_requests,
    request_arrays,
    write_invocation_logs,
)

MODELS = ("anthropic.claude-3-5-haiku-20241022-v1:0", "us.meta.llama3-3-70b-instruct-v1:0")
COMPARED = [c for c in REQUEST_COLUMNS if c != "service_tier"]


def as_truth(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order and plain dtypes, for exact comparison."""
    f = frame[COMPARED].copy()
    f["timestamp"] = pd.to_datetime(f["timestamp"], utc=True).astype("datetime64[ms, UTC]")
    for c in ("model_id", "status", "error_code", "operation"):
        f[c] = f[c].astype(object).where(f[c].notna(), None)
    for c in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens"):
        f[c] = f[c].astype("int64")
    f["max_tokens"] = f["max_tokens"].astype("float64")
    f["latency_s"] = f["latency_s"].astype("float64")
    keys = ["timestamp", "model_id", "input_tokens", "output_tokens", "cache_read_tokens"]
    return f.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("logs")
    spec = SyntheticLogs(requests=2400, models=MODELS, records_per_file=300, rate_per_s=8.0)
    return root, write_invocation_logs(root, spec)


def test_invocation_logs_round_trip_every_operation(logs: tuple[Path, pd.DataFrame]) -> None:
    root, truth = logs
    table = load_requests(root)
    assert table.arrow.schema == REQUEST_SCHEMA
    r = table.report
    assert (r.fmt, r.files, r.lines, r.requests, r.malformed) == ("bedrock-logs", 8, 2400, 2400, 0)
    assert r.timestamp_resolution_s == 1.0 and r.regions == ("us-east-1",)
    pd.testing.assert_frame_equal(as_truth(table.to_pandas()), as_truth(truth))
    # the logged max_tokens came from four body shapes, latency from three
    assert set(truth["operation"]) == {
        "Converse",
        "ConverseStream",
        "InvokeModel",
        "InvokeModelWithResponseStream",
    }
    assert table.models == tuple(sorted(MODELS))


def test_model_filter_and_models_kept_apart(logs: tuple[Path, pd.DataFrame]) -> None:
    root, truth = logs
    one = load_requests(root, model_id=MODELS[1])
    assert one.models == (MODELS[1],)
    assert len(one) == (truth["model_id"] == MODELS[1]).sum()
    assert one.report.filtered_out == (truth["model_id"] == MODELS[0]).sum()
    with pytest.raises(TrafficSourceError, match=r"no requests of model 'nope'.*models found"):
        load_requests(root, model_id="nope")


def _lines(root: Path) -> list[tuple[Path, list[str]]]:
    out = []
    for f in sorted(root.rglob("*.json.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            out.append((f, fh.read().splitlines()))
    return out


def _write(path: Path, lines: list[str], *, compress: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_cloudwatch_export_and_events_give_the_same_table(
    logs: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, truth = logs
    for i, (_, lines) in enumerate(_lines(root)):
        stamps = [json.loads(x)["timestamp"] for x in lines]
        # export to S3: "<ISO time> <message>", .gz without .json
        _write(
            tmp_path / "export" / "task" / f"stream-{i}" / "000000.gz",
            [f"{s.replace('Z', '.000Z')} {x}" for s, x in zip(stamps, lines, strict=True)],
        )
        # filter-log-events: one event object per line
        _write(
            tmp_path / "events" / f"events-{i}.jsonl",
            [json.dumps({"timestamp": 1, "message": x, "ingestionTime": 2}) for x in lines],
            compress=False,
        )
    expected = as_truth(truth)
    for folder, fmt in (("export", "cloudwatch-export"), ("events", "cloudwatch-events")):
        table = load_requests(tmp_path / folder)
        assert table.report.fmt == fmt
        pd.testing.assert_frame_equal(as_truth(table.to_pandas()), expected)


def test_malformed_lines_counted_first_reported_with_file_and_line(
    logs: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, truth = logs
    files = _lines(root)
    for i, (path, lines) in enumerate(files):
        lines = list(lines)
        lines.insert(3, "")  # blank lines are not malformed
        if i == 2:  # the first malformed line, in file order: file 3, line 7
            lines.insert(6, '{"schemaType": "ModelInvocationLog", "timestamp": ')
            lines.insert(20, "not json at all")
            lines.insert(30, '{"schemaType":"Model\x01InvocationLog"}')
        if i == 5:
            lines.insert(0, "[1, 2, 3]")
        _write(tmp_path / path.relative_to(root), lines)
    table = load_requests(tmp_path)
    third = sorted(tmp_path.rglob("*.json.gz"))[2]
    assert table.report.malformed == 4
    assert table.report.first_malformed == f"{third}:7"
    assert len(table) == len(truth)
    assert f"first at {third}:7" in table.report.lines_for_humans()[0]


def test_missing_token_counts_and_other_records_skipped_and_counted(tmp_path: Path) -> None:
    spec = SyntheticLogs(requests=40, throttled_share=0.0)
    truth = write_invocation_logs(tmp_path / "src", spec)
    ((_path, lines),) = _lines(tmp_path / "src")
    recs = [json.loads(x) for x in lines]
    del recs[3]["output"]["outputTokenCount"]  # a served request without its output count
    del recs[4]["input"]["inputTokenCount"]
    recs.append({"schemaType": "SomethingElse", "timestamp": "2026-03-02T09:00:00Z"})
    _write(tmp_path / "dst" / "a.json.gz", [json.dumps(r) for r in recs])
    table = load_requests(tmp_path / "dst")
    assert (table.report.missing_tokens, table.report.other_records) == (2, 1)
    assert len(table) == len(truth) - 2


def test_naive_timestamps_need_a_time_zone(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(
        "timestamp,input_tokens,output_tokens\n2026-03-02 10:00:00,100,10\n"
        "2026-03-02T10:00:01+01:00,120,12\n"
    )
    with pytest.raises(TrafficSourceError) as err:
        load_requests(trace)
    message = str(err.value)
    assert "\n" not in message and f"{trace}:2" in message and "--tz" in message
    table = load_requests(trace, tz="Europe/Paris")
    got = table.to_pandas()["timestamp"].dt.strftime("%H:%M:%S").tolist()
    assert got == ["09:00:00", "09:00:01"]  # local 10:00 in Paris (UTC+1) and the explicit offset
    with pytest.raises(TrafficSourceError, match="unknown time zone"):
        load_requests(trace, tz="Mars/Olympus")


def test_traces_csv_parquet_jsonl_and_epoch_seconds(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": [
                "2026-03-02T10:00:00.250Z",
                "2026-03-02T10:00:02Z",
                "2026-03-02T10:01:00Z",
            ],
            "input_tokens": [100, 30_000, 50],
            "output_tokens": [10, 20, 0],
            "max_tokens": [512, None, 64],
            "model_id": ["m1", "m2", "m1"],
            "latency_ms": [900.0, 1500.0, None],
            "status": ["ok", "ok", "throttled"],
            "error_code": [None, None, "ThrottlingException"],
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    with (tmp_path / "t.jsonl").open("w") as fh:
        for rec in frame.to_dict("records"):
            fh.write(json.dumps({k: v for k, v in rec.items() if v == v and v is not None}) + "\n")
    stamps = pd.to_datetime(frame["timestamp"], format="ISO8601", utc=True)
    epoch = frame.assign(timestamp=(stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds())
    epoch.to_csv(tmp_path / "epoch.csv", index=False)
    tables = [load_requests(tmp_path / n) for n in ("t.csv", "t.parquet", "t.jsonl", "epoch.csv")]
    first = tables[0].to_pandas()
    assert [len(t) for t in tables] == [3, 3, 3, 3]
    assert first["latency_s"].tolist()[:2] == [0.9, 1.5]
    assert first["max_tokens"].tolist()[:2] == [512, pd.NA] or first["max_tokens"].isna()[1]
    assert first["status"].tolist() == ["ok", "ok", "throttled"]
    assert str(first["timestamp"][0]) == "2026-03-02 10:00:00.250000+00:00"
    for t in tables[1:]:
        pd.testing.assert_frame_equal(as_truth(t.to_pandas()), as_truth(first))


def test_azure_trace_columns_as_they_are(tmp_path: Path) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n"
    )
    table = load_requests(trace, tz="UTC", default_model_id="my-model")
    got = table.to_pandas()
    assert got["input_tokens"].tolist() == [4808, 3180] and got["model_id"].tolist() == [
        "my-model",
        "my-model",
    ]
    assert str(got["timestamp"][0]) == "2023-11-16 18:17:03.979000+00:00"  # to the millisecond


def test_bad_trace_rows_reported_with_their_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(
        "timestamp,input_tokens,output_tokens\n2026-03-02T10:00:00Z,100,10\n"
        "2026-03-02T10:00:01Z,abc,12\n2026-03-02T10:00:02Z,5,6,7\n"
        "2026-03-02T10:00:03Z,5,\n"
    )
    table = load_requests(trace)
    assert (table.report.malformed, table.report.missing_tokens, len(table)) == (2, 1, 1)
    assert table.report.first_malformed == f"{trace}:3"


def test_empty_missing_and_unreadable_sources_are_one_line_errors(
    logs: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank").mkdir()
    _write(tmp_path / "blank" / "a.json.gz", ["", ""])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.json.gz").write_bytes(b"this is not gzip")
    truncated = gzip.compress(b'{"schemaType":"ModelInvocationLog"}\n' * 100)[:40]
    (bad / "b.json.gz").write_bytes(truncated)
    cases = {
        tmp_path / "empty": "no log files",
        tmp_path / "nowhere": "no such file or folder",
        tmp_path / "blank": "hold no JSON records",
        bad: "no readable log file",
    }
    for source, text in cases.items():
        with pytest.raises(CapacityError) as err:
            load_requests(source)
        assert text in str(err.value) and "\n" not in str(err.value)
        assert str(source) in str(err.value)
    # one unreadable file among good ones is skipped and counted
    root, truth = logs
    mixed = tmp_path / "mixed"
    for path, lines in _lines(root):
        _write(mixed / path.relative_to(root), lines)
    (mixed / "zz-corrupt.json.gz").write_bytes(b"not gzip")
    table = load_requests(mixed)
    assert table.report.unreadable_files == 1 and len(table) == len(truth)
    assert table.report.first_unreadable == str(mixed / "zz-corrupt.json.gz")


def test_bodies_folder_and_permission_check_are_not_read(
    logs: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, truth = logs
    for path, lines in _lines(root):
        _write(tmp_path / path.relative_to(root), lines)
    hour = sorted(tmp_path.rglob("*.json.gz"))[0].parent
    _write(hour / "data" / "x_input.json.gz", ['{"schemaType":"ModelInvocationLog","big":1}'])
    (hour / "amazon-bedrock-logs-permission-check").write_text("check")
    table = load_requests(tmp_path)
    assert len(table) == len(truth) and table.report.other_records == 0


def test_llmcap_run_records_as_requests(tmp_path: Path) -> None:
    prompt = SyntheticPrompt("small", 200, 0.2, 0.01, 50.0, 0.001)
    records = synthetic_records(
        [prompt], levels=(2, 4), requests_per_level=20, throttle_rate=0.1, model_id="m-run"
    )
    run = tmp_path / "run"
    run.mkdir()
    records.to_parquet(run / "records.parquet")
    (run / "run.json").write_text(json.dumps({"started_at": "2026-03-02T10:00:00+00:00"}))
    table = load_requests(run)
    got = table.to_pandas()
    sent = records[records["start_s"].notna()]
    assert len(got) == len(sent) and table.report.fmt == "llmcap-records"
    first = pd.Timestamp("2026-03-02T10:00:00Z") + pd.to_timedelta(sent["start_s"].min(), "s")
    assert got["timestamp"].min() == first.floor("ms")
    assert (got["status"] == "throttled").sum() == (sent["status"] == "throttled").sum()
    assert got["latency_s"].max() == pytest.approx(sent["e2e_s"].max())


def test_request_arrays_contract(logs: tuple[Path, pd.DataFrame]) -> None:
    root, truth = logs
    table = load_requests(root)
    arrays = request_arrays(table, MODELS[0])
    mine = truth[truth["model_id"] == MODELS[0]].sort_values("timestamp", kind="stable")
    n = len(mine)
    assert len(arrays.arrival_s) == n
    for name, dtype in (
        ("arrival_s", np.float64),
        ("input_tokens", np.int64),
        ("cache_read_tokens", np.int64),
        ("cache_write_tokens", np.int64),
        ("output_tokens", np.int64),
        ("max_tokens", np.int64),
        ("latency_s", np.float64),
        ("ok", np.bool_),
    ):
        values = getattr(arrays, name)
        assert values.dtype == dtype and values.shape == (n,), name
    assert arrays.arrival_s[0] == 0.0 and np.all(np.diff(arrays.arrival_s) > 0)
    # whole-second stamps: the n requests of a second sit at k/n within it
    whole = (mine["timestamp"] - mine["timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    assert np.array_equal(np.floor(arrays.arrival_s), whole)
    assert arrays.ok.sum() == (mine["status"] == "ok").sum()
    assert np.isnan(arrays.latency_s).sum() == mine["latency_s"].isna().sum()
    assert table.start(MODELS[0]) == mine["timestamp"].iloc[0].to_pydatetime()
    assert sorted(arrays.input_tokens) == sorted(mine["input_tokens"])
    trace_like = load_requests(root, model_id=MODELS[0])
    assert (request_arrays(trace_like, MODELS[0]).max_tokens >= 0).all()
    with pytest.raises(TrafficSourceError, match="no requests of model"):
        request_arrays(table, "other")


def test_unknown_max_tokens_is_minus_one_and_latency_nan(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(
        "timestamp,input_tokens,output_tokens\n2026-03-02T10:00:00.5Z,1,2\n"
        "2026-03-02T10:00:00.25Z,3,4\n"
    )
    arrays = request_arrays(load_requests(trace), "unknown")
    assert arrays.max_tokens.tolist() == [-1, -1] and np.isnan(arrays.latency_s).all()
    assert arrays.arrival_s.tolist() == [0.0, 0.25]  # millisecond stamps are not spread
    assert arrays.input_tokens.tolist() == [3, 1]


def test_logged_tiers_reach_the_replay(tmp_path: Path) -> None:
    """A trace that names each request's tier gives the replay those tiers (Reserved capacity
    and Priority/Flex replay as logged); unnamed and unknown tiers are Standard."""
    trace = tmp_path / "tiers.csv"
    trace.write_text(
        "timestamp,input_tokens,output_tokens,service_tier\n"
        "2026-03-02T10:00:00Z,10,2,priority\n2026-03-02T10:00:01Z,10,2,\n"
        "2026-03-02T10:00:02Z,10,2,flex\n2026-03-02T10:00:03Z,10,2,gold\n"
    )
    arrays = request_arrays(load_requests(trace), "unknown")
    from capacity.serving import SERVICE_TIERS

    assert arrays.service_tier is not None
    assert [SERVICE_TIERS[i] for i in arrays.service_tier] == [
        "priority", "default", "flex", "default",
    ]  # fmt: skip
    plain = tmp_path / "plain.csv"
    plain.write_text("timestamp,input_tokens,output_tokens\n2026-03-02T10:00:00Z,10,2\n")
    assert request_arrays(load_requests(plain), "unknown").service_tier is None
