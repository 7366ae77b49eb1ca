"""What to buy on Amazon Bedrock for a load: on-demand Standard (in-Region, cross-Region,
global), the Priority and Flex tiers, bedrock-mantle, Reserved capacity, Provisioned
Throughput and batch inference, each with the quota or capacity to request, its monthly cost,
expected latency and throttle share replayed through the quota ledger, and what is assumed
(docs/architecture.md, "What to buy").

``compare`` takes a workload and a target user count, ``compare_traffic`` real traffic; both
return a ``Comparison`` (``to_dict``/``from_dict``, ``why`` one option against the others).
Numbers AWS does not publish come from the user (``GivenFigures``) or the price table, never
from the code.
"""

from capacity.compare._compare import DEFAULT_REPLAY_MINUTES, compare, compare_traffic
from capacity.compare._given import (
    DEFAULT_OVERFLOW_TARGET,
    PT_TERMS,
    RESERVED_TERMS,
    CompareError,
    GivenFigures,
)
from capacity.compare._rows import NAMES, ON_DEMAND, PRIORITY_CLAIM
from capacity.compare._table import LINE_LABELS, BuyLine, BuyOption, Comparison
from capacity.compare._traffic import deferred_mask

OPTIONS = tuple(NAMES)
"""Every option's key, in table order."""

__all__ = [
    "DEFAULT_OVERFLOW_TARGET",
    "DEFAULT_REPLAY_MINUTES",
    "LINE_LABELS",
    "NAMES",
    "ON_DEMAND",
    "OPTIONS",
    "PRIORITY_CLAIM",
    "PT_TERMS",
    "RESERVED_TERMS",
    "BuyLine",
    "BuyOption",
    "CompareError",
    "Comparison",
    "GivenFigures",
    "compare",
    "compare_traffic",
    "deferred_mask",
]
