"""``llmcap quotas`` / ``request-increase`` / ``request-status`` against the emulator's Service
Quotas API with real boto3, and each user error as one line with the fix and exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions as bexc
import pytest
from botocore.stub import Stubber

from account import AccessDenied, connect, read_model_quotas
from account.cloudwatch import fetch_usage
from account.quotas import AppliedQuota, classify, match_model, model_part, name_matches_id
from account.requests import plan_increase, submit_increase
from capacity.usage import UsageMeta, quota_tokens
from emulator import Emulator
from llmcap.cli import main

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
TPM_CODE = "L-0E7AA8B7"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_and_model_part() -> None:
    assert classify("Cross-region model inference tokens per minute for X") == (
        "tpm",
        "cross-region",
    )
    assert classify("Global cross-region model inference tokens per minute for X") == (
        "tpm", "global",
    )  # fmt: skip
    assert classify("On-demand InvokeModel requests per minute for X") == ("rpm", "on-demand")
    assert classify("Model invocation max tokens per day for X (doubled)") == ("tpd", "any")
    assert classify("Records per batch inference job for X") == ("other", "other")
    name = "Model invocation max tokens per day for Anthropic Claude 3.7 Sonnet V1 (doubled for x)"
    assert model_part(name) == "anthropic claude 3.7 sonnet"
    assert name_matches_id(
        "anthropic claude 3.5 haiku", "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    assert not name_matches_id("anthropic claude 3.5 sonnet", "anthropic.claude-3-5-haiku-v1:0")


def _q(name: str, code: str, value: float) -> AppliedQuota:
    kind, scope = classify(name)
    return AppliedQuota(code, name, value, value, True, kind, scope)


def test_match_model_separates_scopes_and_similar_names() -> None:
    tpm = "model inference tokens per minute for Anthropic Claude Sonnet"
    quotas = [
        _q(f"Cross-region {tpm} 4 V1", "L-A", 1),
        _q(f"Cross-region {tpm} 4.5 V1", "L-B", 2),
        _q(f"Global cross-region {tpm} 4 V1", "L-C", 3),
        _q(f"On-demand {tpm} 4 V1", "L-D", 4),
    ]
    _, scope, hits = match_model(quotas, "us.anthropic.claude-sonnet-4-20250514-v1:0")
    assert scope == "cross-region"
    assert [(q.code, q.source) for q in hits if q.kind == "tpm"] == [("L-A", "account")]
    # RPM and TPD the account does not list come from the shipped table, marked as such.
    assert {q.kind: q.source for q in hits} == {
        "tpm": "account", "rpm": "model table", "tpd": "model table",
    }  # fmt: skip
    _, scope, hits = match_model(quotas, "global.anthropic.claude-sonnet-4-20250514-v1:0")
    assert (scope, [q.code for q in hits]) == ("global", ["L-C"])
    _, scope, hits = match_model(quotas, "anthropic.claude-sonnet-4-20250514-v1:0")
    assert (scope, [q.code for q in hits]) == ("on-demand", ["L-D"])


def test_quotas_command_lists_and_matches(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "quotas", "--region", "us-west-2", "--endpoint-url", emu.url, "--json"
    )
    assert code == 0
    assert {q["code"] for q in json.loads(out)} >= {TPM_CODE, "L-DEDE703C"}
    code, out, _ = run(capsys, "quotas", "--region", "us-west-2", "--endpoint-url", emu.url,
                       "--model-id", LLAMA, "--json")  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["scope"] == "cross-region"
    tpm = next(q for q in doc["quotas"] if q["kind"] == "tpm")
    assert (tpm["code"], tpm["value"], tpm["default"], tpm["adjustable"]) == (
        TPM_CODE, 300_000, 600_000, True,
    )  # fmt: skip
    code, out, _ = run(capsys, "quotas", "--region", "us-west-2", "--endpoint-url", emu.url,
                       "--model-id", LLAMA)  # fmt: skip
    assert code == 0 and TPM_CODE in out and "300,000" in out


def test_request_increase_dry_run_submit_duplicate_status(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--region", "us-west-2", "--endpoint-url", emu.url)
    code, out, _ = run(capsys, "request-increase", *base, "--quota-code", TPM_CODE,
                       "--desired-value", "1000000")  # fmt: skip
    assert code == 0
    assert (
        "aws service-quotas request-service-quota-increase --region us-west-2 --service-code "
        f"bedrock --quota-code {TPM_CODE} --desired-value 1000000"
    ) in out
    conn = connect("us-west-2", endpoint_url=emu.url)
    assert read_model_quotas(conn, LLAMA).quotas[0].open_requests == ()  # dry run filed nothing
    code, out, _ = run(capsys, "request-increase", *base, "--quota-code", TPM_CODE,
                       "--desired-value", "1000000", "--submit", "--json")  # fmt: skip
    filed = json.loads(out)
    assert code == 0 and filed["status"] == "PENDING" and filed["desired_value"] == 1_000_000
    code, _, err = run(capsys, "request-increase", *base, "--quota-code", TPM_CODE,
                       "--desired-value", "2000000", "--submit")  # fmt: skip
    assert code == 2
    assert err.startswith("error: an increase request for L-0E7AA8B7 is already open in us-west-2")
    follow = f"llmcap request-status {filed['request_id']} --region us-west-2 --endpoint-url "
    follow += emu.url
    assert f"follow it with `{follow}`" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "request-status", filed["request_id"], *base)
    assert code == 0 and "PENDING" in out
    code, _, err = run(capsys, "request-status", "no-such-id", *base)
    assert code == 2 and "check --region" in err
    opened = read_model_quotas(conn, LLAMA).quotas[0].open_requests
    assert [r.request_id for r in opened] == [filed["request_id"]]


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (("--quota-code", "L-DEDE703C", "--desired-value", "5000"), "is not adjustable"),
        (("--quota-code", TPM_CODE, "--desired-value", "1000"), "not above the current value"),
        (("--quota-code", "L-12345678", "--desired-value", "5000"), "llmcap quotas --region"),
    ],
)
def test_request_increase_refusals(
    emu: Emulator, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fix: str
) -> None:
    code, _, err = run(capsys, "request-increase", "--region", "us-west-2",
                       "--endpoint-url", emu.url, *argv)  # fmt: skip
    assert code == 2 and err.startswith("error: ") and fix in err and err.count("\n") == 1


def test_a_lost_answer_is_resolved_from_history_not_resent(emu: Emulator) -> None:
    conn = connect("us-west-2", endpoint_url=emu.url)
    plan = plan_increase(conn, TPM_CODE, 800_000)
    client = conn.client("service-quotas", retries=False)
    real = client.request_service_quota_increase
    calls = []

    def lost(**kw: Any) -> Any:
        calls.append(kw)
        real(**kw)  # AWS filed it ...
        raise bexc.ReadTimeoutError(endpoint_url=emu.url)  # ... but the answer never came

    client.request_service_quota_increase = lost
    status = submit_increase(conn, plan)
    assert len(calls) == 1
    assert (status.status, status.desired_value) == ("PENDING", 800_000)


def test_errors_are_one_line_with_the_fix(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    code, _, err = run(capsys, "quotas", "--region", "moon-1", "--endpoint-url", emu.url)
    assert code == 2 and "not offered in Region 'moon-1'" in err and "use one of" in err
    code, _, err = run(capsys, "quotas", "--region", "us-west-2", "--endpoint-url", emu.url,
                       "--model-id", "acme.nothing-v1:0")  # fmt: skip
    assert code == 2 and "not in the shipped model table" in err
    code, _, err = run(capsys, "quotas", "--region", "us-west-2", "--endpoint-url",
                       "http://127.0.0.1:9")  # fmt: skip
    assert code == 2 and "cannot reach --endpoint-url" in err
    code, _, err = run(capsys, "quotas", "--region", "us-west-2", "--aws-profile", "nobody")
    assert code == 2 and "profile 'nobody' not found" in err
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = run(capsys, "quotas", "--region", "us-west-2")
    assert code == 2 and err.startswith("error: no AWS credentials found — pass --aws-profile")
    # A local stand-in needs no credentials: placeholder keys sign the calls.
    code, out, _ = run(capsys, "quotas", "--region", "us-west-2", "--endpoint-url", emu.url)
    assert code == 0 and "L-0E7AA8B7" in out


def test_expired_sso_token_names_the_login_command(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A real SSO profile whose token cache is empty: botocore fails to load the token."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "config").write_text(
        "[profile work]\nsso_session = corp\nsso_account_id = 111122223333\n"
        "sso_role_name = Planner\nregion = us-west-2\n\n[sso-session corp]\n"
        "sso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))  # the SSO token cache lives under ~/.aws/sso
    code, _, err = run(capsys, "quotas", "--region", "us-west-2", "--endpoint-url", emu.url,
                       "--aws-profile", "work")  # fmt: skip
    assert code == 2
    fix = "run `aws sso login --profile work`"
    assert err == f"error: the AWS SSO session has expired or is missing — {fix}\n"


def test_access_denied_names_the_iam_action(emu: Emulator) -> None:
    """AccessDenied cannot come from the emulator (it checks no policies): a Stubber gives the
    real error shape."""
    conn = connect("us-west-2", endpoint_url=emu.url)
    client = conn.client("service-quotas")
    with Stubber(client) as stub:
        stub.add_client_error(
            "list_service_quotas", service_error_code="AccessDeniedException",
            service_message="User: arn:aws:iam::1:user/x is not authorized", http_status_code=403,
        )  # fmt: skip
        with pytest.raises(AccessDenied) as info:
            read_model_quotas(conn, LLAMA)
    assert info.value.action == "servicequotas:ListServiceQuotas"
    assert "needs IAM action servicequotas:ListServiceQuotas" in str(info.value)


def test_expired_session_credentials(emu: Emulator) -> None:
    conn = connect("us-west-2", endpoint_url=emu.url)
    with Stubber(conn.client("service-quotas")) as stub:
        stub.add_client_error(
            "list_service_quotas", service_error_code="ExpiredTokenException",
            service_message="The security token included in the request is expired",
        )  # fmt: skip
        with pytest.raises(Exception, match="credentials have expired — renew them"):
            read_model_quotas(conn, LLAMA)


def test_cloudwatch_frame_from_a_stubbed_answer_with_percentiles(emu: Emulator) -> None:
    """Percentile statistics and EstimatedTPMQuotaUsage, which moto cannot serve, parsed from a
    GetMetricData answer of AWS's shape (Stubber): a missing estimate falls back to the counts."""
    conn = connect("us-west-2", endpoint_url=emu.url)
    end = datetime(2026, 3, 2, 0, 3, tzinfo=UTC)
    t0, t1 = end - timedelta(minutes=3), end - timedelta(minutes=2)

    def result(qid: str, values: list[float], stamps: list[datetime]) -> dict[str, Any]:
        return {"Id": qid, "Label": qid, "Timestamps": stamps, "Values": values,
                "StatusCode": "Complete"}  # fmt: skip

    sums = {
        "s_invocations": [2.0, 3.0], "s_throttles": [0.0, 1.0], "s_input_tokens": [200.0, 300.0],
        "s_output_tokens": [20.0, 30.0], "s_cache_read_tokens": [0.0, 0.0],
        "s_cache_write_tokens": [0.0, 0.0],
    }  # fmt: skip
    first = [result(k, v, [t0, t1]) for k, v in sums.items()]
    first += [result("s_estimated_tpm_quota_usage", [999.0], [t1])]
    first += [result("a_ttft_ms_avg", [300.0, 310.0], [t0, t1]),
              result("a_latency_ms_avg", [900.0, 950.0], [t0, t1])]  # fmt: skip
    second = [
        result(f"p_{m}_{p}", [float(i)], [t0])
        for m in ("ttft_ms", "latency_ms")
        for i, p in enumerate(("p50", "p90", "p99"))
    ]
    with Stubber(conn.client("cloudwatch")) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": first})
        stub.add_response("get_metric_data", {"MetricDataResults": second})
        frame, period, notes = fetch_usage(conn, LLAMA, 3 / 1440, end=end)
    assert period == 60 and len(frame) == 3
    assert frame["invocations"].tolist() == [2.0, 3.0, 0.0]
    assert frame["ttft_ms_p99"].tolist()[0] == 2.0
    assert not any("percentiles" in n for n in notes)
    q = quota_tokens(frame, UsageMeta(LLAMA, "us-west-2").burndown)
    assert q.tolist() == [220.0, 999.0, 0.0]  # counts, Bedrock's estimate, no traffic
