"""Bedrock model invocation logs in S3, streamed to ``capacity.usage.load_requests``.

``S3LogObjects("s3://bucket/prefix", conn)`` lists the log objects under the prefix (the layout
``AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/*.json.gz``; the ``data/``
folders of large bodies and the permission-check object are skipped) and hands each object's
body to the loader as the stream boto3 returns: its bytes are decompressed and split into lines
by Arrow and projected by DuckDB, and never written to disk. IAM: ``s3:ListBucket`` on the
bucket and ``s3:GetObject`` on the prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from account.aws import Connection
from account.errors import AccountError

LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".log", ".txt", ".gz")


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise AccountError(f"{url!r} is not an S3 URL — write it as s3://bucket/prefix")
    return parts.netloc, parts.path.lstrip("/")


def is_log_key(key: str, prefix: str) -> bool:
    """Whether ``key`` is a log object: a log suffix, no ``data`` folder below ``prefix``, not
    the permission-check object."""
    rest = key[len(prefix) :].lower()
    name = rest.rsplit("/", 1)[-1]
    return (
        name.endswith(LOG_SUFFIXES)
        and "permission-check" not in name
        and "data" not in rest.split("/")[:-1]
    )


@dataclass
class S3LogObjects:
    """The log objects under ``url`` (a ``capacity.usage.ObjectSource``)."""

    url: str
    conn: Connection

    @property
    def name(self) -> str:
        """The source's name in messages and reports."""
        return self.url

    def keys(self) -> list[str]:
        """The log objects' keys under the prefix, sorted (so hours come in order)."""
        bucket, prefix = parse_s3_url(self.url)

        def list_all(client: Any) -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", ())]

        try:
            keys = self.conn.call("s3", "s3:ListBucket", list_all)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
            raise AccountError(
                f"{self.url}: no such bucket — check the bucket name (the one Bedrock's "
                "invocation logging writes to: aws bedrock get-model-invocation-logging-"
                "configuration)"
            ) from exc
        return sorted(k for k in keys if is_log_key(k, prefix))

    def objects(self) -> Iterator[tuple[str, IO[bytes]]]:
        """(``s3://bucket/key``, body stream) of each log object, fetched one at a time."""
        bucket, _ = parse_s3_url(self.url)
        for key in self.keys():

            def get(client: Any, key: str = key) -> Any:
                return client.get_object(Bucket=bucket, Key=key)

            body: IO[bytes] = self.conn.call("s3", "s3:GetObject", get)["Body"]
            try:
                yield f"s3://{bucket}/{key}", body
            finally:
                body.close()
