"""Start a Ray node that stays on loopback: ``python tests/e2e/ray_node.py start ...``.

Ray 2.60's ``ray start`` replaces ``--node-ip-address=127.0.0.1`` by the machine's own address
(``ray._private.services.resolve_ip_for_localhost``), and its head would then listen there. This
launcher keeps the address as given, so the node's GCS, raylet, object manager, agents and
workers all bind 127.0.0.1 — the test checks that with ``ss``.
"""

from __future__ import annotations

import sys

import ray._private.services as services
from ray.scripts.scripts import main


def _as_given(host: str) -> str:
    return host


if __name__ == "__main__":
    services.resolve_ip_for_localhost = _as_given
    sys.argv = ["ray", *sys.argv[1:]]
    main()  # type: ignore[no-untyped-call]  # ray's click entry point is untyped
