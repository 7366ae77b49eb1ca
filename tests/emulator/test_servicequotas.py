"""The emulator's Service Quotas API, driven by real boto3 (JSON 1.1 over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from capacity.serving import load_profile
from emulator import Emulator
from emulator.servicequotas import ServiceQuotas, quota_entries, region_of, synthetic_code


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(tpm=300_000) as e:
        yield e


@pytest.fixture()
def sq(emu: Emulator) -> Any:
    return boto3.client(
        "service-quotas", region_name="eu-west-1", endpoint_url=emu.url,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example",
    )  # fmt: skip


def test_quotas_come_from_the_profile_and_the_model_table() -> None:
    entries = {e.name: e for e in quota_entries(load_profile("llama3.3-70b-bedrock"))}
    tpm = entries["Cross-region model inference tokens per minute for Meta Llama 3.3 70B Instruct"]
    assert (tpm.code, tpm.value, tpm.default, tpm.adjustable) == (
        "L-0E7AA8B7",
        600_000.0,
        600_000.0,
        True,
    )
    # The base id has no table entry for on-demand and no configured TPM: no quota is invented.
    assert not any(n.startswith("On-demand") for n in entries)


def test_list_paginates_and_reports_configured_values(sq: Any) -> None:
    pages = list(
        sq.get_paginator("list_service_quotas").paginate(
            ServiceCode="bedrock", PaginationConfig={"PageSize": 1}
        )
    )
    quotas = {q["QuotaCode"]: q for page in pages for q in page["Quotas"]}
    assert len(pages) == len(quotas) == 3
    assert quotas["L-0E7AA8B7"]["Value"] == 300_000
    assert quotas["L-0E7AA8B7"]["QuotaArn"].startswith("arn:aws:servicequotas:eu-west-1:")
    on_demand = "On-demand model inference tokens per minute for Meta Llama 3.3 70B Instruct"
    assert quotas[synthetic_code(on_demand)]["QuotaName"] == on_demand
    defaults = {q["QuotaCode"]: q["Value"] for q in
                sq.list_aws_default_service_quotas(ServiceCode="bedrock")["Quotas"]}  # fmt: skip
    assert defaults["L-0E7AA8B7"] == 600_000


def test_get_and_errors(sq: Any) -> None:
    q = sq.get_service_quota(ServiceCode="bedrock", QuotaCode="L-DEDE703C")["Quota"]
    assert (q["Value"], q["Adjustable"], q["Period"]["PeriodUnit"]) == (800, False, "MINUTE")
    with pytest.raises(sq.exceptions.NoSuchResourceException):
        sq.get_service_quota(ServiceCode="bedrock", QuotaCode="L-00000000")
    with pytest.raises(sq.exceptions.NoSuchResourceException):
        sq.list_service_quotas(ServiceCode="ec2")
    with pytest.raises(sq.exceptions.IllegalArgumentException, match="not adjustable"):
        sq.request_service_quota_increase(
            ServiceCode="bedrock", QuotaCode="L-DEDE703C", DesiredValue=1000
        )
    with pytest.raises(sq.exceptions.IllegalArgumentException, match="less than or equal"):
        sq.request_service_quota_increase(
            ServiceCode="bedrock", QuotaCode="L-0E7AA8B7", DesiredValue=300_000
        )


def test_request_lifecycle_and_duplicate(emu: Emulator, sq: Any) -> None:
    code = "L-0E7AA8B7"
    req = sq.request_service_quota_increase(
        ServiceCode="bedrock", QuotaCode=code, DesiredValue=900_000
    )["RequestedQuota"]
    assert (req["Status"], req["DesiredValue"], req["QuotaCode"]) == ("PENDING", 900_000, code)
    got = sq.get_requested_service_quota_change(RequestId=req["Id"])["RequestedQuota"]
    assert got["Id"] == req["Id"]
    with pytest.raises(sq.exceptions.ResourceAlreadyExistsException):
        sq.request_service_quota_increase(
            ServiceCode="bedrock", QuotaCode=code, DesiredValue=900_000
        )
    history = sq.list_requested_service_quota_change_history_by_quota(
        ServiceCode="bedrock", QuotaCode=code
    )["RequestedQuotas"]
    assert [r["Id"] for r in history] == [req["Id"]]
    with pytest.raises(sq.exceptions.NoSuchResourceException):
        sq.get_requested_service_quota_change(RequestId="nope")


def test_approval_raises_the_applied_value() -> None:
    state = ServiceQuotas(load_profile("llama3.3-70b-bedrock"))
    body = {"ServiceCode": "bedrock", "QuotaCode": "L-0E7AA8B7", "DesiredValue": 700_000}
    target = "ServiceQuotasV20190624.RequestServiceQuotaIncrease"
    rid = state.handle(target, body, "us-east-1")["RequestedQuota"]["Id"]
    state.set_status(rid, "APPROVED")
    get = state.handle(
        "ServiceQuotasV20190624.GetServiceQuota",
        {"ServiceCode": "bedrock", "QuotaCode": "L-0E7AA8B7"}, "us-east-1",
    )  # fmt: skip
    assert get["Quota"]["Value"] == 700_000
    # Approved is closed: a new request may be filed.
    body["DesiredValue"] = 800_000
    assert state.handle(target, body, "us-east-1")["RequestedQuota"]["Status"] == "PENDING"


def test_region_of_reads_the_sigv4_scope() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/ap-south-1/servicequotas/aws4_request, X"
    assert region_of(auth) == "ap-south-1"
    assert region_of(None) == "us-east-1"
