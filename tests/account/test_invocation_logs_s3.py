"""Invocation logs read from S3 (moto's server on 127.0.0.1, real boto3): the same requests as
from the local folder; bodies' folders skipped; bad objects and lines reported by key and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from account import AccountError, connect
from account.invocation_logs import S3LogObjects, is_log_key, parse_s3_url
from capacity.usage import (
    SyntheticLogs,
    TrafficSourceError,
    load_requests,
    write_invocation_logs,
)
from tests.s3_stub import s3_server, upload_tree

pytestmark = pytest.mark.timeout(120)


def test_keys_and_urls() -> None:
    assert parse_s3_url("s3://b/p/q") == ("b", "p/q")
    with pytest.raises(AccountError, match="s3://bucket/prefix"):
        parse_s3_url("/local/path")
    p = "logs/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/"
    assert is_log_key(p + "2026/03/02/09/x.json.gz", "logs/")
    assert not is_log_key(p + "2026/03/02/09/data/x_input.json.gz", "logs/")
    assert not is_log_key(
        "logs/AWSLogs/1/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check", "logs/"
    )


def test_s3_logs_equal_the_local_folder(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    spec = SyntheticLogs(requests=1200, models=("m.a", "m.b"), records_per_file=250)
    write_invocation_logs(root, spec)
    hour = sorted(root.rglob("*.json.gz"))[0].parent
    (hour / "data").mkdir()
    (hour / "data" / "big_input.json.gz").write_bytes(gzip.compress(b'{"x": 1}\n'))
    local = load_requests(root)
    with s3_server() as (url, s3):
        s3.create_bucket(Bucket="bedrock-logs")
        upload_tree(s3, "bedrock-logs", "team/a", root)
        conn = connect("us-east-1", endpoint_url=url)
        source = S3LogObjects("s3://bedrock-logs/team/a", conn)
        assert len(source.keys()) == 5  # data/ is not a log object
        remote = load_requests(source)
        assert remote.arrow.equals(local.arrow)
        assert remote.report.files == 5 and remote.report.source == "s3://bedrock-logs/team/a"
        only_b = load_requests(source, model_id="m.b")
        assert only_b.models == ("m.b",)
        # a malformed line and a corrupt object, reported by key and line
        key = source.keys()[1]
        lines = gzip.decompress(s3.get_object(Bucket="bedrock-logs", Key=key)["Body"].read())
        text = lines.decode().splitlines()
        text.insert(4, "{broken")
        s3.put_object(Bucket="bedrock-logs", Key=key, Body=gzip.compress("\n".join(text).encode()))
        s3.put_object(Bucket="bedrock-logs", Key="team/a/zz.json.gz", Body=b"not gzip")
        bad = load_requests(source)
        assert bad.report.malformed == 1
        assert bad.report.first_malformed == f"s3://bedrock-logs/{key}:5"
        assert bad.report.unreadable_files == 1
        assert bad.report.first_unreadable == "s3://bedrock-logs/team/a/zz.json.gz"
        assert len(bad) == len(local)
        with pytest.raises(TrafficSourceError, match="no log objects"):
            load_requests(S3LogObjects("s3://bedrock-logs/elsewhere", conn))
        with pytest.raises(AccountError, match="no such bucket"):
            load_requests(S3LogObjects("s3://missing-bucket/x", conn))
