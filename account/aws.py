"""Sessions and clients from the standard credential chain, and botocore failures → typed errors.

``connect(region, profile, endpoint_url)`` checks the Region (``check_region``, against the
SDK's list of Bedrock Regions) and that credentials resolve before any call; ``Connection.call``
runs one API call and turns what the user can fix (no credentials, expired SSO token,
AccessDenied, unreachable endpoint) into an ``AccountError`` whose message names the fix.
``endpoint_url`` points every client at a stand-in (the emulator serves Service Quotas and
CloudWatch GetMetricData; moto serves CloudWatch too) — the code path is the one used against
AWS. ``Connection.follow_up`` writes the ``llmcap`` command of a next step with the flags that
reproduce the connection, so what a command prints can be pasted as it is.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from account.errors import (
    AccessDenied,
    AccountError,
    NoCredentials,
    QuotaNotFound,
    SsoTokenExpired,
    WrongRegion,
)

_ACCESS_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_REJECTED_KEYS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
}
_SSO_ERRORS: tuple[type[Exception], ...] = (
    bexc.SSOTokenLoadError,
    bexc.UnauthorizedSSOTokenError,
    bexc.TokenRetrievalError,
    bexc.SSOError,
)


def bedrock_regions() -> list[str]:
    """Regions where botocore knows a Bedrock endpoint (commercial and GovCloud partitions)."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in ("aws", "aws-us-gov"):
        regions.update(session.get_available_regions("bedrock", partition_name=partition))
    return sorted(regions)


def check_region(region: str) -> str:
    """``region`` when botocore knows a Bedrock endpoint there; else ``WrongRegion``, naming the
    closest Region (``us-esat-1`` → ``us-east-1``)."""
    known = bedrock_regions()
    if region in known:
        return region
    distance, closest = min((_typos(region, r), r) for r in known)
    if distance <= 2:
        raise WrongRegion(
            f"Amazon Bedrock is not offered in Region {region!r} — did you mean {closest}?"
        )
    raise WrongRegion(
        f"Amazon Bedrock is not offered in Region {region!r} — use one of {', '.join(known)}"
    )


def _typos(a: str, b: str) -> int:
    """Edits between ``a`` and ``b``: insertions, deletions, substitutions and swaps of two
    neighbours (``esat`` → ``east`` is one)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        prev2, prev = prev, row
    return prev[-1]


def _flag_value(value: str | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Connection:
    """A boto3 session for one Region, optionally pointed at a stand-in endpoint."""

    session: boto3.session.Session
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    _clients: dict[tuple[str, bool], Any] = field(default_factory=dict)

    def client(self, service: str, *, retries: bool = True) -> Any:
        """A client of ``service``; ``retries=False`` makes exactly one attempt (for calls that
        must never be repeated blindly, such as RequestServiceQuotaIncrease)."""
        key = (service, retries)
        if key not in self._clients:
            attempts = 3 if retries else 1
            config = Config(retries={"total_max_attempts": attempts, "mode": "standard"})
            make = cast(Any, self.session.client)  # the service name is a runtime string
            self._clients[key] = make(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        return self._clients[key]

    def call(
        self, service: str, action: str, fn: Callable[[Any], Any], *, retries: bool = True
    ) -> Any:
        """``fn(client)``, with failures the user can fix raised as ``AccountError``. ``action``
        is the IAM action the call needs (``servicequotas:ListServiceQuotas``)."""
        try:
            return fn(self.client(service, retries=retries))
        except Exception as exc:
            error = self.translate(exc, action)
            if error is None:
                raise
            raise error from exc

    def follow_up(self, command: str, *words: str, **options: str | float | bool | None) -> str:
        """The ``llmcap`` command line of a next step on this same account, shell-quoted:
        ``command``, its positional ``words``, ``options`` (``quota_code="L-1"`` →
        ``--quota-code L-1``; None is left out, True is a bare flag) and the flags that reproduce
        this connection — ``--region``, ``--aws-profile`` and ``--endpoint-url`` when set."""
        parts = ["llmcap", command, *words]
        flags: dict[str, str | float | bool | None] = {
            **options, "region": self.region, "aws_profile": self.profile,
            "endpoint_url": self.endpoint_url,
        }  # fmt: skip
        for name, value in flags.items():
            if value is None or value is False:
                continue
            parts.append("--" + name.replace("_", "-"))
            if value is not True:
                parts.append(_flag_value(value))
        return shlex.join(parts)

    def login_hint(self) -> str:
        """The command that renews credentials for this profile."""
        return f"aws sso login --profile {self.profile}" if self.profile else "aws sso login"

    def translate(self, exc: BaseException, action: str) -> AccountError | None:
        """The ``AccountError`` for ``exc``, or None when it is not one the user can fix."""
        if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
            return NoCredentials(
                "no AWS credentials found — pass --aws-profile NAME, set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`"
            )
        if isinstance(exc, _SSO_ERRORS):
            return SsoTokenExpired(
                f"the AWS SSO session has expired or is missing — run `{self.login_hint()}`"
            )
        if isinstance(exc, bexc.EndpointConnectionError):
            if self.endpoint_url is not None:
                return AccountError(
                    f"cannot reach --endpoint-url {self.endpoint_url} — start it (e.g. "
                    "`llmcap emulate`) or drop the flag to use AWS"
                )
            return WrongRegion(
                f"cannot reach AWS in Region {self.region!r} — check --region "
                "(e.g. us-east-1, us-west-2) and your network"
            )
        if isinstance(exc, bexc.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            message = " ".join(str(err.get("Message", "")).split())
            if code in _ACCESS_DENIED:
                return AccessDenied(
                    f"access denied: the caller needs IAM action {action} — add it to the role or "
                    f"user's policy (docs/account.md lists them all). AWS said: {message}",
                    action,
                )
            if code in _EXPIRED:
                return SsoTokenExpired(
                    f"the AWS credentials have expired — renew them (`{self.login_hint()}` "
                    "or a new session token)"
                )
            if code in _REJECTED_KEYS:
                return NoCredentials(
                    f"AWS rejected the credentials ({code}) — check the access key or "
                    "--aws-profile, or run `aws configure`"
                )
            if code == "NoSuchResourceException":
                listing = self.follow_up("quotas")
                return QuotaNotFound(f"{message} — list the codes with `{listing}`")
        return None


def is_loopback(url: str | None) -> bool:
    """Whether ``url`` points at this machine (127.0.0.1, ::1 or localhost)."""
    if url is None:
        return False
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


OFFLINE_KEYS = ("llmcap-offline", "llmcap-offline")
"""Placeholder keys for stand-ins (the emulator, moto), which check no signatures. Not secret."""


def connect(
    region: str,
    profile: str | None = None,
    endpoint_url: str | None = None,
    *,
    offline: bool = False,
) -> Connection:
    """A ``Connection`` for ``region``; raises ``WrongRegion`` or ``NoCredentials`` up front.
    ``offline=True`` (with ``endpoint_url``) signs with placeholder keys instead of the chain;
    so does a loopback ``endpoint_url`` (a local stand-in) when the chain has no credentials."""
    check_region(region)
    if offline:
        if endpoint_url is None:
            raise AccountError("offline=True needs an endpoint_url (a local stand-in)")
        key, secret = OFFLINE_KEYS
        session = boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name=region
        )
        return Connection(session, region, None, endpoint_url)
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except bexc.ProfileNotFound:
        raise NoCredentials(
            f"AWS profile {profile!r} not found — list them with `aws configure list-profiles` "
            "or run `aws configure sso`"
        ) from None
    conn = Connection(session, region, profile, endpoint_url)
    try:
        credentials = session.get_credentials()
    except Exception as exc:
        error = conn.translate(exc, "sts:GetCallerIdentity")
        if error is None:
            raise
        raise error from exc
    if credentials is None and profile is None and is_loopback(endpoint_url):
        # A local stand-in checks no signature: sign with placeholder keys rather than fail.
        return connect(region, endpoint_url=endpoint_url, offline=True)
    if credentials is None:
        error = conn.translate(bexc.NoCredentialsError(), "")
        assert error is not None
        raise error
    return conn
