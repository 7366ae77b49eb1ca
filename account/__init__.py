"""account: the AWS control plane of one account — Bedrock quotas (Service Quotas), their increase
requests, and per-minute usage (CloudWatch ``AWS/Bedrock``). See docs/account.md.

This package is I/O: it makes boto3 calls and turns their answers and failures into values and
typed errors. The arithmetic on those values (percentiles, growth, forecast, cost) is pure and
lives in ``capacity.usage``.

Import rule: ``account`` may import ``capacity`` (the model table in ``capacity.serving`` and the
usage frame in ``capacity.usage``), boto3 and botocore; it imports nothing of ``bench``,
``emulator``, ``llmcap`` or ``app``. Nothing in ``capacity`` imports ``account``. The CLI
(``llmcap``) composes the two.

Errors: every failure a user can fix is an ``AccountError`` whose message is one line that
already says the fix; ``llmcap.cli.main`` prints ``error: <message>`` and exits 2.

``check_region`` is the one check of a ``--region`` against the SDK's list of Bedrock Regions;
``Connection.follow_up`` writes the next ``llmcap`` command with the flags of the connection.
CloudWatch usage (``account.cloudwatch.fetch_usage``) stays in its module: it loads pandas.
"""

from account.aws import Connection, bedrock_regions, check_region, connect
from account.errors import (
    AccessDenied,
    AccountError,
    DuplicateRequest,
    NoCredentials,
    QuotaNotFound,
    RequestRejected,
    SsoTokenExpired,
    UnknownModel,
    WrongRegion,
)
from account.quotas import AppliedQuota, ModelQuotas, read_model_quotas, read_quotas
from account.requests import (
    IncreaseRequest,
    RequestStatus,
    plan_increase,
    request_status,
    submit_increase,
)

__all__ = [
    "AccessDenied",
    "AccountError",
    "AppliedQuota",
    "Connection",
    "DuplicateRequest",
    "IncreaseRequest",
    "ModelQuotas",
    "NoCredentials",
    "QuotaNotFound",
    "RequestRejected",
    "RequestStatus",
    "SsoTokenExpired",
    "UnknownModel",
    "WrongRegion",
    "bedrock_regions",
    "check_region",
    "connect",
    "plan_increase",
    "read_model_quotas",
    "read_quotas",
    "request_status",
    "submit_increase",
]
