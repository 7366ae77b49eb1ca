"""Privacy of real traffic: a secret planted in every request and response body of invocation
logs (a local folder and S3) appears in no output — not the request table, the load report,
the analysis (JSON and Markdown), the figures, usage.parquet, the quota-increase report in
every format (PDF text included) and its case text, any file written, nor anywhere DuckDB
could persist (it runs in memory with no spill directory)."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import matplotlib
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pypdf
import pytest

from account import connect
from account.invocation_logs import S3LogObjects
from capacity.usage import (
    SyntheticLogs,
    analyze_traffic,
    duckdb_connect,
    load_requests,
    plot_token_distributions,
    plot_traffic_rates,
    write_invocation_logs,
)
from llmcap.cli import main
from tests.s3_stub import aws_test_env, s3_server, upload_tree

SECRET = "SECRET-7f3a9c-do-not-leak"
pytestmark = pytest.mark.timeout(180)


def tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def assert_clean(data: bytes | str, where: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    assert SECRET.encode() not in raw, f"the secret leaked into {where}"


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    spec = SyntheticLogs(requests=600, models=("m.a", "m.b"), secret=SECRET, records_per_file=200)
    write_invocation_logs(root, spec)
    first = sorted(root.rglob("*.json.gz"))[0]
    with gzip.open(first, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    lines.insert(2, lines[2][: len(lines[2]) // 2])  # a malformed line that holds the secret
    with gzip.open(first, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    raw = b"".join(gzip.decompress(p.read_bytes()) for p in root.rglob("*.json.gz"))
    assert raw.count(SECRET.encode()) > 1000  # it is there, in bodies
    return root


def check_outputs(table: object, analysis: object) -> None:
    arrow = table.arrow  # type: ignore[attr-defined]
    for name in arrow.column_names:
        assert_clean(str(arrow[name].to_pylist()), f"column {name}")
    assert_clean(json.dumps(table.report.to_dict()), "the load report")  # type: ignore[attr-defined]
    assert table.report.malformed == 1  # type: ignore[attr-defined]
    assert_clean(json.dumps(analysis.to_dict(), default=str), "the analysis JSON")  # type: ignore[attr-defined]
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in the SVG
        for m in analysis.models:  # type: ignore[attr-defined]
            assert_clean(m.markdown() + m.summary.markdown(), "the Markdown")
            for fig in (plot_traffic_rates(m), plot_token_distributions(m)):
                for fmt in ("svg", "png"):
                    buf = io.BytesIO()
                    fig.savefig(buf, format=fmt)
                    assert_clean(buf.getvalue(), f"a figure ({fmt})")


def test_no_secret_in_any_output(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_test_env(monkeypatch, tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # DuckDB would put a spill folder here; HOME would get extensions
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = tree(tmp_path)
    # the local folder, through the library
    table = load_requests(logs)
    check_outputs(table, analyze_traffic(table))
    # S3, through the CLI glue, writing every output the command writes
    with s3_server() as (url, s3):
        s3.create_bucket(Bucket="logs")
        upload_tree(s3, "logs", "p", logs)
        remote = load_requests(S3LogObjects("s3://logs/p", connect("us-east-1", endpoint_url=url)))
        check_outputs(remote, analyze_traffic(remote))
        out = tmp_path / "out"
        usage = ["usage", "--from-logs", "s3://logs/p", "--endpoint-url", url, "-o", str(out)]
        assert main([*usage, "--json"]) == 0
        printed = capsys.readouterr()
        assert '"models"' in printed.out
        assert_clean(printed.out + printed.err, "the printed output")
        report = ["report", "--from-logs", "s3://logs/p", "--endpoint-url", url, "--model-id",
                  "m.a", "--tpm", "20000", "--target-users", "50", "--region", "us-east-1",
                  "--use-case", "privacy", "-o", str(out / "report")]  # fmt: skip
        assert main(report) == 0, capsys.readouterr().err
        printed = capsys.readouterr()
        assert "TPM sized by replay" in printed.out
        assert_clean(printed.out + printed.err, "the report's printed output")
    written = tree(tmp_path) - before
    files = [p for p in written if p.is_file()]
    assert files and all(out in p.parents for p in files), [
        p for p in files if out not in p.parents
    ]
    for path in files:
        assert_clean(path.read_bytes(), str(path))
        if path.suffix == ".pdf":  # its text streams are compressed: read them as text
            text = "".join(
                p.extract_text() for p in pypdf.PdfReader(io.BytesIO(path.read_bytes())).pages
            )
            assert "Historical usage" in text
            assert_clean(text, str(path))
        if path.suffix == ".parquet":
            t = pq.read_table(path)
            assert_clean(str(t.to_pydict()) + str(t.schema.metadata), str(path))
    assert {"traffic.json", "usage.parquet", "summary.md", "token_distributions.png",
            "quota_request.pdf", "quota_request.json", "quota_request_case.txt"} <= {
        p.name for p in files
    }  # fmt: skip
    # nothing under the working directory or HOME: DuckDB persisted nothing
    assert not list(work.iterdir()) and not (tmp_path / "home").exists()
    con = duckdb_connect()
    assert con.execute("SELECT current_setting('temp_directory')").fetchall() == [("",)]
    assert [r[1] for r in con.execute("PRAGMA database_list").fetchall()] == ["memory"]
    assert os.environ["HOME"] == str(tmp_path / "home")
