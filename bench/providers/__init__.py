"""Providers: how a request reaches an endpoint (docs/architecture.md: I/O lives in ``bench``)."""

from __future__ import annotations

from bench.providers.base import PROVIDERS, Call, Endpoint, EndpointError, Provider


def make_provider(endpoint: Endpoint, pool_size: int) -> Provider:
    """The provider named by ``endpoint.provider``, sized for ``pool_size`` concurrent calls."""
    if endpoint.provider in ("bedrock-converse", "bedrock-invoke"):
        api = endpoint.provider.removeprefix("bedrock-")
        if endpoint.client == "boto3":
            from bench.providers.bedrock import BedrockProvider

            return BedrockProvider(endpoint, api=api, pool_size=pool_size)
        if endpoint.client != "async":
            raise EndpointError(f"--client {endpoint.client!r}: choose async or boto3 for Bedrock")
        from bench.providers.bedrock_async import BedrockAsyncProvider

        return BedrockAsyncProvider(endpoint, api=api, pool_size=pool_size)
    if endpoint.provider == "openai":
        if endpoint.client == "httpx":
            from bench.providers.openai_httpx import OpenAIHttpxProvider

            return OpenAIHttpxProvider(endpoint, pool_size=pool_size)
        if endpoint.client != "async":
            raise EndpointError(f"--client {endpoint.client!r}: choose async or httpx for openai")
        from bench.providers.openai import OpenAIProvider

        return OpenAIProvider(endpoint, pool_size=pool_size)
    raise EndpointError(f"--provider {endpoint.provider!r}: choose one of {', '.join(PROVIDERS)}")


__all__ = ["PROVIDERS", "Call", "Endpoint", "EndpointError", "Provider", "make_provider"]
