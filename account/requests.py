"""Quota increase requests: plan the call (dry run), detect a duplicate open request, submit it
once, and follow it by id.

``plan_increase`` reads the quota (GetServiceQuota) and its open requests first, so a request
that AWS would refuse — unknown code, not adjustable, not above the current value, one already
open — fails here with the reason and the fix. ``submit_increase`` makes exactly one
RequestServiceQuotaIncrease attempt (no SDK retries): when it fails in a way that leaves the
outcome unknown, it reads the request history and says whether the request was filed, instead of
sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account.aws import Connection
from account.errors import (
    AccountError,
    DuplicateRequest,
    QuotaNotFound,
    RequestRejected,
)
from account.quotas import SERVICE_CODE, OpenRequest, _iso, open_requests


def _value(x: float) -> str:
    """A quota value as the CLI and the API take it: 1000000, not 1e+06."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class IncreaseRequest:
    """The exact call that would raise ``quota_code`` to ``desired_value`` in ``region``."""

    region: str
    quota_code: str
    quota_name: str
    current_value: float
    desired_value: float

    def cli_text(self) -> str:
        """The AWS CLI command of the call."""
        return (
            f"aws service-quotas request-service-quota-increase --region {self.region} "
            f"--service-code {SERVICE_CODE} --quota-code {self.quota_code} "
            f"--desired-value {_value(self.desired_value)}"
        )

    def api_text(self) -> str:
        """The API call, as boto3 spells it."""
        return (
            f"service-quotas.request_service_quota_increase(ServiceCode={SERVICE_CODE!r}, "
            f"QuotaCode={self.quota_code!r}, DesiredValue={_value(self.desired_value)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {**self.__dict__, "cli": self.cli_text()}


@dataclass(frozen=True)
class RequestStatus:
    """Where an increase request stands."""

    request_id: str
    status: str
    quota_code: str
    quota_name: str
    desired_value: float
    created: str
    last_updated: str
    case_id: str

    @classmethod
    def from_api(cls, r: dict[str, Any]) -> RequestStatus:
        """From a ``RequestedQuota`` member of the API."""
        return cls(
            request_id=r["Id"], status=r["Status"], quota_code=r.get("QuotaCode", ""),
            quota_name=r.get("QuotaName", ""), desired_value=float(r.get("DesiredValue", 0)),
            created=_iso(r.get("Created")), last_updated=_iso(r.get("LastUpdated")),
            case_id=r.get("CaseId") or "",
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def _duplicate(conn: Connection, code: str, req: OpenRequest) -> DuplicateRequest:
    return DuplicateRequest(
        f"an increase request for {code} is already open in {conn.region}: {req.request_id} "
        f"({req.status}, desired {_value(req.desired_value)}, filed {req.created}) — follow it "
        f"with `{conn.follow_up('request-status', req.request_id)}` instead of filing another",
        req.request_id,
    )


def plan_increase(conn: Connection, quota_code: str, desired_value: float) -> IncreaseRequest:
    """Check that the request can be filed and return the call; raises ``QuotaNotFound``,
    ``RequestRejected`` (not adjustable, not an increase) or ``DuplicateRequest``."""
    quota = conn.call(
        "service-quotas", "servicequotas:GetServiceQuota",
        lambda c: c.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=quota_code)["Quota"],
    )  # fmt: skip
    current = float(quota.get("Value", 0.0))
    if quota.get("Adjustable") is False:
        raise RequestRejected(
            f"{quota_code} ({quota['QuotaName']}) is not adjustable — ask AWS Support, or plan "
            "with a quota that is (e.g. cross-Region TPM instead of RPM)"
        )
    if desired_value <= current:
        raise RequestRejected(
            f"--desired-value {desired_value:g} is not above the current value {current:g} of "
            f"{quota_code} — ask for more than {current:g}"
        )
    existing = open_requests(conn, quota_code)
    if existing:
        raise _duplicate(conn, quota_code, existing[0])
    return IncreaseRequest(conn.region, quota_code, quota["QuotaName"], current, desired_value)


def submit_increase(conn: Connection, plan: IncreaseRequest) -> RequestStatus:
    """File ``plan`` with one attempt. An unknown outcome (network, throttling, server error) is
    resolved by reading the request history, never by sending again."""

    def send(client: Any) -> dict[str, Any]:
        out: dict[str, Any] = client.request_service_quota_increase(
            ServiceCode=SERVICE_CODE, QuotaCode=plan.quota_code, DesiredValue=plan.desired_value
        )["RequestedQuota"]
        return out

    try:
        answer = conn.call(
            "service-quotas", "servicequotas:RequestServiceQuotaIncrease", send, retries=False
        )
    except (ClientError, BotoCoreError) as exc:  # AccountErrors (credentials, IAM) propagate
        error = exc.response.get("Error", {}) if isinstance(exc, ClientError) else {}
        code = error.get("Code", "")
        if code == "ResourceAlreadyExistsException":
            existing = open_requests(conn, plan.quota_code)
            if existing:
                raise _duplicate(conn, plan.quota_code, existing[0]) from exc
        if code in ("IllegalArgumentException", "InvalidResourceStateException",
                    "QuotaExceededException", "DependencyAccessDeniedException"):  # fmt: skip
            message = error.get("Message", code)
            raise RequestRejected(f"Service Quotas refused the request: {message}") from exc
        filed = open_requests(conn, plan.quota_code)
        match = [r for r in filed if r.desired_value == plan.desired_value]
        if match:
            return request_status(conn, match[0].request_id)
        again = conn.follow_up(
            "request-increase", quota_code=plan.quota_code,
            desired_value=_value(plan.desired_value), submit=True,
        )  # fmt: skip
        raise AccountError(
            f"the request did not go through ({type(exc).__name__}: {exc}) and none is open "
            f"for {plan.quota_code}; nothing was retried — file it again with `{again}`"
        ) from exc
    return RequestStatus.from_api(answer)


def request_status(conn: Connection, request_id: str) -> RequestStatus:
    """The status of increase request ``request_id`` (GetRequestedServiceQuotaChange)."""
    try:
        answer = conn.call(
            "service-quotas", "servicequotas:GetRequestedServiceQuotaChange",
            lambda c: c.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"],
        )  # fmt: skip
    except QuotaNotFound:
        raise QuotaNotFound(
            f"no quota increase request {request_id!r} in {conn.region} (request ids are per "
            "Region) — check --region and the id printed by `llmcap request-increase --submit`"
        ) from None
    return RequestStatus.from_api(answer)
