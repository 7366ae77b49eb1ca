"""Synthetic Bedrock model invocation logs with a known truth, for tests and the benchmark.

Records follow the schema AWS writes (``schemaType`` ``ModelInvocationLog``, one JSON object
per line, gzipped, in the S3 layout ``AWSLogs/<account>/BedrockModelInvocationLogs/<region>/
YYYY/MM/DD/HH/``) with request and response bodies of the four runtime operations: Converse
(``inferenceConfig.maxTokens``, ``metrics.latencyMs``), ConverseStream (a list of stream events
ending with ``metadata.metrics.latencyMs``), InvokeModel with an Anthropic body (``max_tokens``,
no latency) and InvokeModelWithResponseStream with a Llama body (``max_gen_len``, the last
chunk's ``amazon-bedrock-invocationMetrics.invocationLatency``). A share of requests is
throttled (``errorCode`` ``ThrottlingException``, no output). Timestamps are whole seconds, as
Bedrock writes them. Body text is random words of ``body_chars`` characters per request
(independent of the token counts); ``secret`` is planted in every request and response body.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream")


@dataclass(frozen=True)
class SyntheticLogs:
    """What to write: ``requests`` over ``models`` (round robin), Poisson arrivals at
    ``rate_per_s`` from ``start``, ``records_per_file`` per object, bodies of about
    ``body_chars`` characters, a ``throttled_share`` of throttled requests."""

    requests: int = 1000
    models: tuple[str, ...] = ("anthropic.claude-3-5-haiku-20241022-v1:0",)
    start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    rate_per_s: float = 5.0
    records_per_file: int = 500
    body_chars: int = 1500
    throttled_share: float = 0.02
    secret: str | None = None
    account: str = "123456789012"
    region: str = "us-east-1"
    seed: int = 0
    part: int = 0
    """Written into object names, so that several parts can share one folder."""


def _texts(rng: np.random.Generator, n: int, chars: int, secret: str | None) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(2000)]
    out = []
    for _ in range(n):
        size = max(8, int(rng.normal(chars, chars / 4)))
        picked = rng.choice(len(words), size=size // 5 + 1)
        text = " ".join(words[i] for i in picked)[:size]
        out.append(text if secret is None else f"{secret} {text} {secret}")
    return out


def truth_frame(spec: SyntheticLogs) -> pd.DataFrame:
    """The requests the logs will hold (what a loader should find), one row per request."""
    rng = np.random.default_rng(spec.seed)
    n = spec.requests
    gaps = rng.exponential(1.0 / spec.rate_per_s, n)
    t = np.floor(np.cumsum(gaps)).astype(np.int64)  # Bedrock stamps whole seconds
    inp = np.maximum(1, rng.lognormal(6.5, 1.0, n)).astype(np.int64)
    cache_read = np.where(rng.random(n) < 0.3, rng.integers(0, 4000, n), 0)
    cache_write = np.where(rng.random(n) < 0.05, rng.integers(0, 2000, n), 0)
    max_tokens = rng.choice([256, 1024, 4096], n)
    out = np.minimum(np.maximum(1, rng.lognormal(5.0, 0.8, n)).astype(np.int64), max_tokens)
    op = np.array(OPERATIONS)[rng.integers(0, len(OPERATIONS), n)]
    throttled = rng.random(n) < spec.throttled_share
    latency = np.round(0.3 + out * 0.02 + rng.exponential(0.2, n), 3)
    return pd.DataFrame(
        {
            "timestamp": pd.Timestamp(spec.start) + pd.to_timedelta(t, unit="s"),
            "model_id": np.array(spec.models)[np.arange(n) % len(spec.models)],
            "input_tokens": inp,
            "cache_read_tokens": np.where(throttled, 0, cache_read).astype(np.int64),
            "cache_write_tokens": np.where(throttled, 0, cache_write).astype(np.int64),
            "output_tokens": np.where(throttled, 0, out).astype(np.int64),
            "max_tokens": max_tokens.astype(np.int64),
            "latency_s": np.where(throttled | (op == "InvokeModel"), np.nan, latency),
            "status": np.where(throttled, "throttled", "ok"),
            "error_code": pd.Series(["ThrottlingException" if t else None for t in throttled]),
            "operation": op,
        }
    )


def _record(row: tuple[object, ...], request: str, response: str, spec: SyntheticLogs) -> str:
    ts, model, inp, cr, cw, out, max_tokens, latency, status, _code, op, i = row
    ms = int(float(latency) * 1000) if latency == latency else 0  # type: ignore[arg-type]
    stamp = pd.Timestamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[arg-type]
    head = (
        f'{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"{stamp}",'
        f'"accountId":"{spec.account}","identity":{{"arn":"arn:aws:iam::{spec.account}:user/'
        f'app"}},"region":"{spec.region}","requestId":"{i:08d}-5e1f-4c1a-9d2b-000000000000",'
        f'"operation":"{op}","modelId":"{model}",'
    )
    if op in ("Converse", "ConverseStream"):
        body = (
            f'{{"messages":[{{"role":"user","content":[{{"text":"{request}"}}]}}],'
            f'"inferenceConfig":{{"maxTokens":{max_tokens},"temperature":0.5}}}}'
        )
    elif op == "InvokeModel":
        body = (
            f'{{"anthropic_version":"bedrock-2023-05-31","max_tokens":{max_tokens},'
            f'"messages":[{{"role":"user","content":"{request}"}}]}}'
        )
    else:
        body = f'{{"prompt":"{request}","max_gen_len":{max_tokens},"temperature":0.5}}'
    inputs = (
        f'"input":{{"inputContentType":"application/json","inputBodyJson":{body},'
        f'"inputTokenCount":{inp},"cacheReadInputTokenCount":{cr},'
        f'"cacheWriteInputTokenCount":{cw}}}'
    )
    if status != "ok":
        return f'{head}{inputs},"errorCode":"ThrottlingException"}}'
    half = len(response) // 2
    usage = f'"inputTokens":{inp},"outputTokens":{out}'
    if op == "Converse":
        reply = (
            f'{{"output":{{"message":{{"role":"assistant","content":[{{"text":'
            f'"{response}"}}]}}}},"stopReason":"end_turn","metrics":{{"latencyMs":{ms}}},'
            f'"usage":{{{usage}}}}}'
        )
    elif op == "ConverseStream":
        reply = (
            f'[{{"messageStart":{{"role":"assistant"}}}},{{"contentBlockDelta":{{"delta":'
            f'{{"text":"{response[:half]}"}},"contentBlockIndex":0}}}},{{"contentBlockDelta"'
            f':{{"delta":{{"text":"{response[half:]}"}},"contentBlockIndex":0}}}},'
            f'{{"messageStop":{{"stopReason":"end_turn"}}}},{{"metadata":{{"usage":{{{usage}}}'
            f',"metrics":{{"latencyMs":{ms}}}}}}}]'
        )
    elif op == "InvokeModel":
        reply = (
            f'{{"id":"msg_bdrk_{i:08d}","type":"message","role":"assistant","content":'
            f'[{{"type":"text","text":"{response}"}}],"stop_reason":"end_turn","usage":'
            f'{{"input_tokens":{inp},"output_tokens":{out}}}}}'
        )
    else:
        reply = (
            f'[{{"generation":"{response[:half]}","stop_reason":null}},{{"generation":'
            f'"{response[half:]}","stop_reason":"stop","amazon-bedrock-invocationMetrics":'
            f'{{"inputTokenCount":{inp},"outputTokenCount":{out},"invocationLatency":{ms},'
            f'"firstByteLatency":{ms // 4}}}}}]'
        )
    outputs = (
        f'"output":{{"outputContentType":"application/json","outputBodyJson":{reply},'
        f'"outputTokenCount":{out}}}'
    )
    return f"{head}{inputs},{outputs}}}"


def write_invocation_logs(
    out_dir: str | Path, spec: SyntheticLogs, *, compresslevel: int = 6
) -> pd.DataFrame:
    """Write ``spec``'s logs under ``out_dir`` in the S3 layout; returns ``truth_frame(spec)``
    with the latency Bedrock logs (whole milliseconds; NaN where the operation logs none)."""
    truth = truth_frame(spec)
    truth["latency_s"] = np.floor(truth["latency_s"] * 1000) / 1000
    rng = np.random.default_rng(spec.seed + 1)
    pool = _texts(rng, 256, spec.body_chars, spec.secret)
    replies = _texts(rng, 256, max(8, spec.body_chars // 4), spec.secret)
    pick = rng.integers(0, len(pool), (len(truth), 2))
    base = Path(out_dir) / "AWSLogs" / spec.account / "BedrockModelInvocationLogs" / spec.region
    rows = list(truth.itertuples(index=False, name=None))
    for first in range(0, len(rows), spec.records_per_file):
        ts = pd.Timestamp(truth["timestamp"].iloc[first])
        folder = base / ts.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{ts.strftime('%Y%m%dT%H%M%S')}Z_{spec.part:04d}_{first:09d}.json.gz"
        lines = [
            _record((*rows[i], i), pool[pick[i, 0]], replies[pick[i, 1]], spec)
            for i in range(first, min(first + spec.records_per_file, len(rows)))
        ]
        with gzip.open(folder / name, "wt", encoding="utf-8", compresslevel=compresslevel) as fh:
            fh.write("\n".join(lines) + "\n")
    return truth
