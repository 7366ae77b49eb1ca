"""Typed errors of the account package: each message is one line naming the problem and the fix
(``what — fix``); ``llmcap.cli.main`` prints it as ``error: <message>`` and exits 2.

AccountError
├── NoCredentials     no credentials in the standard chain
├── SsoTokenExpired   the SSO session is over
├── AccessDenied      an IAM action is missing (named)
├── WrongRegion       the Region does not exist or has no Bedrock
├── UnknownModel      the model id matches no quota
├── QuotaNotFound     the quota code does not exist in the Region
├── DuplicateRequest  an increase request for the quota is already open
└── RequestRejected   Service Quotas refused an increase request (its reason)
"""

from __future__ import annotations


class AccountError(Exception):
    """A failure talking to the AWS account that the user can fix; the message is one line
    that contains the fix."""


class NoCredentials(AccountError):
    """No AWS credentials were found."""


class SsoTokenExpired(AccountError):
    """The AWS SSO / IAM Identity Center token has expired or is missing."""


class AccessDenied(AccountError):
    """The caller lacks an IAM action; ``action`` names it (``servicequotas:ListServiceQuotas``)."""

    def __init__(self, message: str, action: str) -> None:
        super().__init__(message)
        self.action = action


class WrongRegion(AccountError):
    """The Region is unknown, or Bedrock is not offered there."""


class UnknownModel(AccountError):
    """No quota matches the model id."""


class QuotaNotFound(AccountError):
    """The quota code does not exist for bedrock in the Region."""


class DuplicateRequest(AccountError):
    """An increase request for the quota is already open; ``request_id`` names it."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class RequestRejected(AccountError):
    """Service Quotas refused the increase request (not adjustable, too low, ...)."""
