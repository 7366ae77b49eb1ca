"""The issue's acceptance on the shipped Azure 2023 traces: the quota recommended for each,
replayed through the ledger, throttles at most the target, and 0.9× of it throttles more (the
search is tight) — under both quota rules, and for the trace scaled to four times its users."""

from __future__ import annotations

import pytest

from capacity.serving import QuotaLimits, QuotaRule, replay, size_quota
from capacity.usage import request_arrays, scale_trace, traffic_template

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
TARGET = 0.001


@pytest.mark.parametrize("template", ["azure-code-2023", "azure-conv-2023"])
@pytest.mark.parametrize("rule", ["bucket", "window"])
def test_the_recommended_quota_is_tight(template: str, rule: QuotaRule) -> None:
    table = traffic_template(template, model_id=LLAMA)
    arrays = request_arrays(table, LLAMA)
    sizing = size_quota(arrays, LLAMA, rule=rule, throttle_target=TARGET, max_tokens=1024)
    at = replay(arrays, LLAMA, QuotaLimits(tpm=sizing.tpm, rule=rule), max_tokens=1024)
    assert at.throttled_share <= TARGET
    below = replay(
        arrays, LLAMA, QuotaLimits(tpm=int(0.9 * sizing.tpm), rule=rule), max_tokens=1024
    )
    assert below.throttled_share > TARGET
    assert sizing.at_recommended.throttled == at.throttled  # the sizing's own replay agrees


def test_more_users_need_more_quota_and_stay_tight() -> None:
    table = traffic_template("azure-conv-2023", model_id=LLAMA)
    one = size_quota(request_arrays(table, LLAMA), LLAMA, max_tokens=1024)
    scaled = scale_trace(table, trace_users=100, target_users=400)
    arrays = request_arrays(scaled, LLAMA)
    four = size_quota(arrays, LLAMA, max_tokens=1024)
    assert 2.5 * one.tpm < four.tpm < 4.5 * one.tpm
    below = replay(arrays, LLAMA, QuotaLimits(tpm=int(0.9 * four.tpm)), max_tokens=1024)
    assert below.throttled_share > TARGET
