"""Bedrock model invocation logs, projected in DuckDB (docs/traffic.md, "Invocation logs").

Bedrock writes one JSON record per line (``schemaType`` ``ModelInvocationLog``), gzipped, under
``AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/*.json.gz``; bodies above
its inline limit go to separate objects under a ``data/`` folder, which are never read here.
CloudWatch Logs carries the same records: an export to S3 writes lines ``<ISO time> <record>``;
``aws logs filter-log-events``/``get-log-events`` events (one JSON object per line) hold the
record as the string ``message``.

Every field is extracted by one ``json_extract_string`` call per line inside DuckDB: the bodies
(``input.inputBodyJson``, ``output.outputBodyJson``) are parsed there only to read the request's
output limit and the logged latency, and nothing of them reaches Python.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from capacity.usage._duck import sql_list
from capacity.usage._requests import TrafficSourceError

LOG_FORMATS: Final = ("bedrock-logs", "cloudwatch-export", "cloudwatch-events")
LOG_SUFFIXES: Final = (".json", ".jsonl", ".ndjson", ".log", ".txt", ".gz")

_BODY = "$.input.inputBodyJson"
_OUT = "$.output.outputBodyJson"
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "schema_type": ("$.schemaType",),
    "timestamp": ("$.timestamp",),
    "model_id": ("$.modelId",),
    "operation": ("$.operation",),
    "error_code": ("$.errorCode",),
    "region": ("$.region",),
    "input_tokens": ("$.input.inputTokenCount",),
    "cache_read_tokens": ("$.input.cacheReadInputTokenCount",),
    "cache_write_tokens": ("$.input.cacheWriteInputTokenCount",),
    "output_tokens": ("$.output.outputTokenCount",),
    # The request's output limit, first match wins: Converse, OpenAI (the newer name first),
    # Anthropic/Mistral/Cohere, Llama, Claude v2 text completions, Nova invoke, Titan.
    "max_tokens": (
        f"{_BODY}.inferenceConfig.maxTokens",
        f"{_BODY}.max_completion_tokens",
        f"{_BODY}.max_tokens",
        f"{_BODY}.max_gen_len",
        f"{_BODY}.max_tokens_to_sample",
        f"{_BODY}.inferenceConfig.max_new_tokens",
        f"{_BODY}.textGenerationConfig.maxTokenCount",
    ),
    # Milliseconds: Converse's metrics, ConverseStream's closing metadata event, the
    # invocation metrics of InvokeModelWithResponseStream's last chunk.
    "latency_ms": (
        f"{_OUT}.metrics.latencyMs",
        f"{_OUT}[#-1].metadata.metrics.latencyMs",
        f'{_OUT}[#-1]."amazon-bedrock-invocationMetrics".invocationLatency',
    ),
    "service_tier": (
        "$.serviceTier.type",
        f"{_BODY}.serviceTier.type",
        f"{_BODY}.service_tier",
        f"{_OUT}.serviceTier.type",
    ),
}
THROTTLE_CODES: Final = (
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceQuotaExceededException",
)
_ARN_PREFIX = r"^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:(inference-profile|foundation-model)/"


def list_log_files(root: Path) -> list[Path]:
    """Log files under ``root`` (a file, or a folder searched recursively), sorted; skips the
    ``data/`` folders of large bodies and the permission-check object Bedrock writes."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise TrafficSourceError(
            f"{root}: no such file or folder — pass the folder holding AWSLogs/… (or a log file)"
        )
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "data" and not d.startswith("."))
        for name in filenames:
            lower = name.lower()
            if lower.endswith(LOG_SUFFIXES) and "permission-check" not in lower:
                found.append(Path(dirpath) / name)
    if not found:
        raise TrafficSourceError(
            f"{root}: no log files (*.json.gz, *.json, *.jsonl, *.gz) — point at the folder "
            "holding AWSLogs/<account>/BedrockModelInvocationLogs/ or at a log file"
        )
    return sorted(found)


def sniff_sql(lines: str) -> str:
    """The format of the first non-blank line of ``lines``, decided inside DuckDB."""
    return (
        "SELECT CASE WHEN NOT regexp_matches(line, '^\\s*\\{') THEN 'cloudwatch-export' "
        "WHEN json_exists(line, '$.schemaType') THEN 'bedrock-logs' "
        "WHEN json_exists(line, '$.message') THEN 'cloudwatch-events' ELSE 'bedrock-logs' END "
        f"FROM (SELECT line FROM {lines} WHERE regexp_matches(line, '\\S') LIMIT 64) "
        "WHERE NOT regexp_matches(line, '^\\s*\\{') OR json_valid(line) LIMIT 1"
    )


def _record_text(fmt: str) -> str:
    """SQL: the record's JSON text of a line in ``fmt``."""
    if fmt == "bedrock-logs":
        return "line"
    if fmt == "cloudwatch-export":
        return "substr(line, strpos(line, ' ') + 1)"
    if fmt == "cloudwatch-events":
        return "TRY(json_extract_string(line, '$.message'))"
    raise TrafficSourceError(f"unknown log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}")


def project_sql(lines: str, fmt: str, timestamp: tuple[str, str]) -> str:
    """SELECT the projected relation (see ``capacity.usage._load``) of ``lines`` (a relation
    with ``filename``, ``line_no`` and ``line``) in format ``fmt``. ``timestamp`` is the pair of
    SQL expressions (TIMESTAMPTZ, is-naive) of the text column ``ts_text``."""
    paths = [p for group in FIELDS.values() for p in group]
    pos: dict[str, list[int]] = {}
    for name, group in FIELDS.items():
        pos[name] = [paths.index(p) + 1 for p in group]

    def first(name: str) -> str:
        items = [f"v[{i}]" for i in pos[name]]
        return items[0] if len(items) == 1 else f"coalesce({', '.join(items)})"

    def count(name: str) -> str:
        return f"TRY_CAST({first(name)} AS BIGINT)"

    def bad_count(name: str) -> str:
        return f"({first(name)} IS NOT NULL AND ({count(name)} IS NULL OR {count(name)} < 0))"

    rec = _record_text(fmt)
    throttle = sql_list(THROTTLE_CODES)
    return f"""
    WITH r AS (
        SELECT filename, line_no, (line IS NULL OR NOT regexp_matches(line, '\\S')) AS blank,
               TRY(json_extract_string({rec}, {sql_list(paths)})) AS v,
               regexp_matches({rec}, '^\\s*\\{{') AS is_object
        FROM {lines}
    ), f AS (
        SELECT filename, line_no, blank, v IS NULL OR NOT coalesce(is_object, false) AS bad,
               v[{pos["schema_type"][0]}] AS schema_type, v[{pos["timestamp"][0]}] AS ts_text,
               regexp_replace({first("model_id")}, '{_ARN_PREFIX}', '') AS model_id,
               {first("region")} AS region, {first("operation")} AS operation,
               nullif({first("error_code")}, '') AS error_code,
               {count("input_tokens")} AS in_tok, {count("output_tokens")} AS out_tok,
               {count("cache_read_tokens")} AS cr_tok, {count("cache_write_tokens")} AS cw_tok,
               {count("max_tokens")} AS max_tokens,
               TRY_CAST({first("latency_ms")} AS DOUBLE) / 1000.0 AS latency_s,
               {first("service_tier")} AS service_tier,
               {bad_count("input_tokens")} OR {bad_count("output_tokens")}
                 OR {bad_count("cache_read_tokens")} OR {bad_count("cache_write_tokens")}
                 AS bad_number
        FROM r
    ), g AS (
        SELECT *, {timestamp[0]} AS ts, {timestamp[1]} AS naive,
               CASE WHEN error_code IS NULL THEN 'ok'
                    WHEN error_code IN {throttle.replace("[", "(").replace("]", ")")}
                    THEN 'throttled' ELSE 'error' END AS status
        FROM f
    )
    SELECT filename, line_no, region,
        CASE WHEN blank THEN 'blank'
             WHEN bad OR bad_number THEN 'malformed'
             WHEN schema_type IS DISTINCT FROM 'ModelInvocationLog' THEN 'other'
             WHEN ts_text IS NULL THEN 'malformed'
             WHEN ts IS NULL AND naive THEN 'naive'
             WHEN ts IS NULL OR model_id IS NULL THEN 'malformed'
             WHEN status = 'ok' AND (in_tok IS NULL OR out_tok IS NULL) THEN 'missing'
             ELSE 'row' END AS kind,
        ts AS timestamp, model_id,
        coalesce(in_tok, 0) AS input_tokens, coalesce(cr_tok, 0) AS cache_read_tokens,
        coalesce(cw_tok, 0) AS cache_write_tokens, coalesce(out_tok, 0) AS output_tokens,
        max_tokens, latency_s, status, error_code, service_tier, operation
    FROM g
    """
