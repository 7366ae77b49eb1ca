"""The one error handler of the ``llmcap`` command: every failure becomes one line.

Commands raise ``UserError`` (what went wrong and how to fix it); ``describe`` also turns the
typed errors of ``bench``, ``capacity``, the emulator, botocore and the OS into the same
``error: <what> — <fix>`` line. ``llmcap.cli.main`` prints it and exits 2 (130 on Ctrl-C);
nothing reaches the user as a traceback unless ``--debug`` (or ``LLMCAP_DEBUG=1``) asks for one.
Only the project's typed input errors exit 2; anything else is shown as a bug (exit 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXIT_USAGE = 2  # bad input, missing file, credentials, an endpoint that refuses everything
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BUG = 1  # an unexpected exception: a bug in llmcap


class UserError(Exception):
    """A failure the user can fix: ``what`` happened, and the ``fix``."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        super().__init__(f"{what} — {fix}" if fix else what)
        self.what = what
        self.fix = fix


@dataclass(frozen=True)
class Failure:
    """How an exception is shown: one line and an exit code."""

    line: str
    code: int


_IAM_ACTION = re.compile(r"perform:\s*([a-z0-9-]+:[A-Za-z0-9*]+)")


def describe(exc: BaseException, *, aws_profile: str | None = None) -> Failure:
    """The one line (and exit code) for ``exc``; unknown exceptions are reported as bugs."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
    if isinstance(exc, UserError):
        return Failure(f"error: {exc}", EXIT_USAGE)
    from bench.sweep import SweepFailed, SweepInterrupted

    if isinstance(exc, SweepInterrupted):
        return Failure(
            f"interrupted (Ctrl-C) — resume with: llmcap bench --resume {exc.run_dir}",
            EXIT_INTERRUPTED,
        )
    if isinstance(exc, SweepFailed):
        return Failure(
            f"error: stopped: {exc.reason} — {fix_for_failed_batch(exc.reason, aws_profile)} "
            f"(rows in {exc.run_dir}/records.jsonl)",
            EXIT_USAGE,
        )
    aws = _describe_aws(exc, aws_profile)
    if aws is not None:
        return Failure(f"error: {aws}", EXIT_USAGE)
    if isinstance(exc, FileExistsError):
        return Failure(f"error: {exc}", EXIT_USAGE)
    if isinstance(exc, PermissionError):
        where = exc.filename or "a file"
        return Failure(
            f"error: permission denied on {where} — choose a path you can write "
            "(e.g. --out under your home directory)",
            EXIT_USAGE,
        )
    if isinstance(exc, FileNotFoundError):
        if exc.filename is None:  # our own messages already name the file and the fix
            return Failure(f"error: {exc}", EXIT_USAGE)
        return Failure(f"error: {exc.filename} not found — check the path", EXIT_USAGE)
    if isinstance(exc, OSError) and exc.filename is not None:
        return Failure(
            f"error: cannot use {exc.filename}: {exc.strerror or exc} — check the path",
            EXIT_USAGE,
        )
    if _is_typed_input_error(exc):
        return Failure(f"error: {_first_line(exc)}", EXIT_USAGE)
    return Failure(
        f"error: unexpected {type(exc).__name__}: {_first_line(exc)} — this is a bug in "
        "llmcap; rerun with --debug for the traceback and report it",
        EXIT_BUG,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _is_typed_input_error(exc: BaseException) -> bool:
    """Errors whose message already names the bad input and the fix."""
    from account.errors import AccountError
    from bench.config import SweepError
    from bench.prompts import PromptError
    from bench.providers import EndpointError
    from capacity.errors import CapacityError
    from capacity.serving import ProfileError
    from emulator import EmulatorError

    typed = (
        SweepError, PromptError, EndpointError, ProfileError, EmulatorError, CapacityError,
        AccountError,
    )  # fmt: skip
    # Only the project's own input errors: a bare ValueError or KeyError is a bug to report.
    return isinstance(exc, typed)


def _describe_aws(exc: BaseException, profile: str | None) -> str | None:
    """botocore's credential and authorization errors, in one line with the fix."""
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    if isinstance(exc, bx.ProfileNotFound):
        name = exc.kwargs.get("profile", profile)
        return (
            f"AWS profile {name!r} not found — list yours with `aws configure list-profiles`, "
            "create it with `aws configure --profile NAME` (or `aws configure sso`), "
            "or drop --aws-profile"
        )
    sso = (bx.UnauthorizedSSOTokenError, bx.SSOTokenLoadError, bx.TokenRetrievalError)
    if isinstance(exc, sso):
        login = f"aws sso login --profile {profile}" if profile else "aws sso login"
        return f"the AWS SSO session has expired or is missing — run `{login}`, then retry"
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return (
            "no AWS credentials found — pass --aws-profile NAME (see `aws configure "
            "list-profiles`), or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            match = _IAM_ACTION.search(message)
            action = match.group(1) if match else "the bedrock:InvokeModel* actions"
            return (
                f"access denied: this identity may not call {action} — grant {action} on the "
                "model (and its inference profile) in IAM, or use another --aws-profile"
            )
        if code in ("ExpiredTokenException", "ExpiredToken"):
            return "the AWS session token has expired — refresh your credentials and retry"
        return f"AWS {code or 'error'}: {message.splitlines()[0] if message else exc}"
    return None


def fix_for_failed_batch(reason: str, aws_profile: str | None = None) -> str:
    """The fix for a first batch that failed entirely, from its codes and first message."""
    if "AccessDenied" in reason:
        match = _IAM_ACTION.search(reason)
        action = match.group(1) if match else "bedrock:InvokeModelWithResponseStream"
        return f"grant {action} on the model to this identity in IAM, or use another --aws-profile"
    if "ExpiredToken" in reason or "expired" in reason.lower():
        login = f"aws sso login --profile {aws_profile}" if aws_profile else "aws sso login"
        return f"the credentials have expired: run `{login}` (or refresh them) and retry"
    if "UnrecognizedClient" in reason or "security token" in reason.lower():
        return "the credentials are not valid for this endpoint: check --aws-profile or AWS_* keys"
    if "ValidationException" in reason or "ResourceNotFound" in reason:
        return "check --model-id (and that the model is available in this Region)"
    if "Connect" in reason or "Errno" in reason or "Name or service" in reason:
        return "check --endpoint-url/--region: nothing answered there"
    return "check --endpoint-url/--region, credentials and --model-id"
