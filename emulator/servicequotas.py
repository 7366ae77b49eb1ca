"""The Service Quotas API (JSON 1.1, ``ServiceQuotasV20190624``) for ``bedrock``, from the
emulator's configured quotas, so real boto3 can read quotas and file increase requests offline.

Operations: ListServiceQuotas, GetServiceQuota, ListAWSDefaultServiceQuotas,
RequestServiceQuotaIncrease, GetRequestedServiceQuotaChange and
ListRequestedServiceQuotaChangeHistoryByQuota. Requests post JSON to ``/`` with the header
``X-Amz-Target: ServiceQuotasV20190624.<Operation>``; errors are HTTP 400 with
``{"__type": ..., "message": ...}``, the shape botocore's JSON parser maps to its exceptions.

Quotas come from the profile: every model the profile serves gets the model table's quotas of its
scope (cross-region for ``us.``/``eu.``/… ids, on-demand otherwise); in bedrock-mantle mode
(``--endpoint mantle``) its bedrock-mantle input and output tokens-per-minute quotas instead.
The applied value is the configured ``--tpm/--rpm/--tpd`` (``--input-tpm/--output-tpm``) when
set, else the published default; the AWS default is the published default (or the configured
value when the table has none). A model or scope the table
does not list gets quotas named the way Bedrock names them, with a stable made-up ``L-`` code,
for each configured limit. Increase requests stay PENDING (no one approves them here).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from capacity.serving import (
    MantleQuota,
    ModelTable,
    Profile,
    QuotaInfo,
    Scope,
    base_model_id,
    is_profile_id,
    load_model_table,
)

SERVICE_CODE = "bedrock"
SERVICE_NAME = "Amazon Bedrock"
TARGET_PREFIX = "ServiceQuotasV20190624."
OPEN_STATUSES = ("PENDING", "CASE_OPENED")
_KIND_TEXT = {
    "tpm": "tokens per minute",
    "rpm": "requests per minute",
    "tpd": "tokens per day",
    "input_tpm": "input tokens per minute",
    "output_tpm": "output tokens per minute",
}
_SCOPE_TEXT = {
    "on-demand": "On-demand model inference",
    "cross-region": "Cross-region model inference",
}


class ServiceQuotasError(Exception):
    """An API error: ``error_type`` (the ``__type``), ``message`` and HTTP ``status``."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


@dataclass(frozen=True)
class QuotaEntry:
    """One quota the emulator reports."""

    code: str
    name: str
    value: float
    default: float
    adjustable: bool
    kind: str

    @property
    def period(self) -> dict[str, Any]:
        """The ``Period`` member: per minute, or per day for TPD."""
        unit = "DAY" if self.kind == "tpd" else "MINUTE"
        return {"PeriodValue": 1, "PeriodUnit": unit}


def synthetic_code(name: str) -> str:
    """A stable ``L-`` + 8 hex digits code for a quota the model table does not list."""
    return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()


def mantle_entries(profile: Profile, table: ModelTable) -> list[QuotaEntry]:
    """bedrock-mantle's input and output TPM of every model ``profile`` serves, named as the
    model table names them (``Bedrock Mantle input tokens per minute for …``), with the table's
    code where AWS publishes one and a stable made-up one otherwise."""
    configured = {"input_tpm": profile.quotas.input_tpm, "output_tpm": profile.quotas.output_tpm}
    entries: dict[str, QuotaEntry] = {}
    for spec in profile.models:
        known: dict[str, MantleQuota] = {q.kind: q for q in table.mantle_quotas_for(spec.model_id)}
        info = table.model(spec.model_id)
        display = info.name if info is not None else base_model_id(spec.model_id)
        for kind, value in configured.items():
            q = known.get(kind)
            applied = value if value is not None else (q.default if q is not None else None)
            if applied is None:
                continue
            name = q.name if q is not None else f"Bedrock Mantle {_KIND_TEXT[kind]} for {display}"
            code = q.code if q is not None and q.code else synthetic_code(name)
            default = q.default if q is not None and q.default is not None else float(applied)
            adjustable = True if q is None or q.adjustable is None else q.adjustable
            entries[code] = QuotaEntry(code, name, float(applied), default, adjustable, kind)
    return sorted(entries.values(), key=lambda e: e.name)


def quota_entries(profile: Profile, table: ModelTable | None = None) -> list[QuotaEntry]:
    """The quotas of every model ``profile`` serves, ordered by name (codes are unique)."""
    table = table or load_model_table()
    if profile.quotas.endpoint == "mantle":
        return mantle_entries(profile, table)
    configured = {"tpm": profile.quotas.tpm, "rpm": profile.quotas.rpm, "tpd": profile.quotas.tpd}
    entries: dict[str, QuotaEntry] = {}
    for spec in profile.models:
        scope: Scope = "cross-region" if is_profile_id(spec.model_id) else "on-demand"
        info = table.model(spec.model_id)
        known: tuple[QuotaInfo, ...] = table.quotas_for(spec.model_id, scope)
        for q in known:
            value = configured[q.kind]
            applied = value if value is not None else q.default
            if applied is None:
                continue
            default = q.default if q.default is not None else float(applied)
            adjustable = True if q.adjustable is None else q.adjustable
            entries[q.code] = QuotaEntry(
                q.code, q.name, float(applied), float(default), adjustable, q.kind
            )
        display = info.name if info is not None else base_model_id(spec.model_id)
        for kind, value in configured.items():
            if value is None or any(q.kind == kind for q in known):
                continue
            if kind == "tpd":
                name = f"Model invocation max tokens per day for {display}"
            else:
                name = f"{_SCOPE_TEXT[scope]} {_KIND_TEXT[kind]} for {display}"
            code = synthetic_code(name)
            entries[code] = QuotaEntry(code, name, float(value), float(value), True, kind)
    return sorted(entries.values(), key=lambda e: e.name)


class ServiceQuotas:
    """The API's state: the quotas (fixed at start) and the increase requests filed since."""

    def __init__(
        self,
        profile: Profile,
        *,
        table: ModelTable | None = None,
        account_id: str = "000000000000",
    ) -> None:
        self.entries = {e.code: e for e in quota_entries(profile, table)}
        self.account_id = account_id
        self.requests: dict[str, dict[str, Any]] = {}

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, target: str, body: dict[str, Any], region: str) -> dict[str, Any]:
        """Run the operation named by ``target`` (the ``X-Amz-Target`` header) on ``body``."""
        if not target.startswith(TARGET_PREFIX):
            raise ServiceQuotasError("UnknownOperationException", f"Unknown target {target!r}.")
        op = target.removeprefix(TARGET_PREFIX)
        handler = {
            "ListServiceQuotas": self._list_service_quotas,
            "GetServiceQuota": self._get_service_quota,
            "ListAWSDefaultServiceQuotas": self._list_default_quotas,
            "RequestServiceQuotaIncrease": self._request_increase,
            "GetRequestedServiceQuotaChange": self._get_request,
            "ListRequestedServiceQuotaChangeHistoryByQuota": self._history_by_quota,
        }.get(op)
        if handler is None:
            raise ServiceQuotasError(
                "UnknownOperationException", f"The emulator does not implement {op}."
            )
        return handler(body, region)

    # -- operations ----------------------------------------------------------------------------
    def _list_service_quotas(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        self._service(body)
        quotas = list(self.entries.values())
        if "QuotaCode" in body:
            quotas = [self._entry(body)]
        return self._page(body, [self._quota(e, region, e.value) for e in quotas], "Quotas")

    def _get_service_quota(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        self._service(body)
        entry = self._entry(body)
        return {"Quota": self._quota(entry, region, entry.value)}

    def _list_default_quotas(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        self._service(body)
        quotas = [self._quota(e, region, e.default) for e in self.entries.values()]
        return self._page(body, quotas, "Quotas")

    def _request_increase(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        self._service(body)
        entry = self._entry(body)
        desired = body.get("DesiredValue")
        if isinstance(desired, bool) or not isinstance(desired, int | float):
            raise ServiceQuotasError("IllegalArgumentException", "DesiredValue must be a number.")
        if not entry.adjustable:
            raise ServiceQuotasError(
                "IllegalArgumentException", f"The quota {entry.code} is not adjustable."
            )
        if float(desired) <= entry.value:
            raise ServiceQuotasError(
                "IllegalArgumentException",
                "The requested value is less than or equal to the current value.",
            )
        for req in self.requests.values():
            if req["QuotaCode"] == entry.code and req["Status"] in OPEN_STATUSES:
                raise ServiceQuotasError(
                    "ResourceAlreadyExistsException",
                    f"A request for {entry.code} is already open (request id {req['Id']}).",
                )
        now = time.time()
        request_id = uuid.uuid4().hex
        request: dict[str, Any] = {
            "Id": request_id,
            "RequestType": "AutomaticManagement",
            "CaseId": "",
            "ServiceCode": SERVICE_CODE,
            "ServiceName": SERVICE_NAME,
            "QuotaCode": entry.code,
            "QuotaName": entry.name,
            "DesiredValue": float(desired),
            "Status": "PENDING",
            "Created": now,
            "LastUpdated": now,
            "Requester": '{"accountId":"' + self.account_id + '","callerArn":"emulator"}',
            "QuotaArn": self._arn(entry, region),
            "GlobalQuota": False,
            "Unit": "None",
            "QuotaRequestedAtLevel": "ACCOUNT",
        }
        self.requests[request_id] = request
        return {"RequestedQuota": dict(request)}

    def _get_request(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        request = self.requests.get(str(body.get("RequestId", "")))
        if request is None:
            raise ServiceQuotasError(
                "NoSuchResourceException", f"No quota request with id {body.get('RequestId')!r}."
            )
        return {"RequestedQuota": dict(request)}

    def _history_by_quota(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        self._service(body)
        entry = self._entry(body)
        status = body.get("Status")
        rows = [
            dict(r)
            for r in self.requests.values()
            if r["QuotaCode"] == entry.code and (status is None or r["Status"] == status)
        ]
        return self._page(body, rows, "RequestedQuotas")

    # -- helpers -------------------------------------------------------------------------------
    def set_status(self, request_id: str, status: str) -> None:
        """Move a request to ``status`` (what AWS's reviewers do; for tests and demos). An
        approved request raises the applied value to the desired one."""
        request = self.requests[request_id]
        request["Status"] = status
        request["LastUpdated"] = time.time()
        if status == "APPROVED":
            code = request["QuotaCode"]
            self.entries[code] = replace(self.entries[code], value=request["DesiredValue"])

    @staticmethod
    def _service(body: dict[str, Any]) -> None:
        if body.get("ServiceCode") != SERVICE_CODE:
            raise ServiceQuotasError(
                "NoSuchResourceException",
                f"The emulator serves quotas of ServiceCode 'bedrock' only, "
                f"not {body.get('ServiceCode')!r}.",
            )

    def _entry(self, body: dict[str, Any]) -> QuotaEntry:
        entry = self.entries.get(str(body.get("QuotaCode", "")))
        if entry is None:
            raise ServiceQuotasError(
                "NoSuchResourceException",
                f"The request failed because the specified quota {body.get('QuotaCode')!r} "
                "does not exist.",
            )
        return entry

    def _arn(self, entry: QuotaEntry, region: str) -> str:
        return f"arn:aws:servicequotas:{region}:{self.account_id}:{SERVICE_CODE}/{entry.code}"

    def _quota(self, entry: QuotaEntry, region: str, value: float) -> dict[str, Any]:
        return {
            "ServiceCode": SERVICE_CODE,
            "ServiceName": SERVICE_NAME,
            "QuotaArn": self._arn(entry, region),
            "QuotaCode": entry.code,
            "QuotaName": entry.name,
            "Value": value,
            "Unit": "None",
            "Adjustable": entry.adjustable,
            "GlobalQuota": False,
            "Period": entry.period,
            "QuotaAppliedAtLevel": "ACCOUNT",
        }

    @staticmethod
    def _page(body: dict[str, Any], rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
        size = body.get("MaxResults", 100)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 100:
            raise ServiceQuotasError("IllegalArgumentException", "MaxResults must be 1 to 100.")
        token = body.get("NextToken")
        try:
            start = int(token) if token is not None else 0
        except ValueError:
            raise ServiceQuotasError(
                "InvalidPaginationTokenException", "Invalid pagination token."
            ) from None
        page: dict[str, Any] = {key: rows[start : start + size]}
        if start + size < len(rows):
            page["NextToken"] = str(start + size)
        return page


def region_of(authorization: str | None) -> str:
    """The Region in a SigV4 ``Authorization`` header's credential scope (us-east-1 if none)."""
    if authorization and "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 3 and scope[2]:
            return scope[2]
    return "us-east-1"
