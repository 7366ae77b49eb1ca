"""The chart a manager reads: today's and the requested quota both lie on the supported-users
curve, each raise is its own step, and the latency at the target sits beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation

from capacity.figures import plot_quota_ask
from capacity.figures.justification import quota_raises
from capacity.fitting import CapacityModel
from capacity.planning import Quota, QuotaRequest, plan_capacity, required_quota
from tests.capacity.report.conftest import CURRENT, LLAMA, WORKLOAD


@pytest.fixture(scope="module")
def request_2000(model: CapacityModel) -> QuotaRequest:
    return required_quota(
        WORKLOAD, 2_000, model, model_id=LLAMA, scope=CURRENT.scope, rpm_enforced=True
    )


@pytest.fixture(scope="module")
def chart(model: CapacityModel, request_2000: QuotaRequest) -> Figure:
    return plot_quota_ask(CURRENT, request_2000, WORKLOAD, model)


def _legend(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def _curve(lines: list[Line2D]) -> tuple[np.ndarray, np.ndarray]:
    (line,) = [x for x in lines if x.get_label() == "supported users"]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def test_both_quotas_lie_on_the_supported_curve(
    model: CapacityModel, request_2000: QuotaRequest, chart: Figure
) -> None:
    request = request_2000
    main = chart.axes[0]
    x, y = _curve(main.get_lines())
    now = plan_capacity(CURRENT, WORKLOAD, model)
    asked = request.applied_to(CURRENT)
    then = plan_capacity(asked, WORKLOAD, model)
    assert asked.tpm == request.tpm and asked.rpm == request.rpm
    for tpm, users in ((CURRENT.runtime_tpm, now.users), (asked.runtime_tpm, then.users)):
        (i,) = np.flatnonzero(np.isclose(x, tpm))
        assert y[i] == np.float64(users)
    assert then.users >= 2_000  # the requested point reaches the target, on the curve
    assert np.all(np.diff(y) >= -1e-6)  # more quota never serves fewer users
    # Holding RPM at 800 (the old figure) would flatten at today's RPM-bound count:
    held = plan_capacity(Quota(tpm=request.tpm, rpm=800, model_id=LLAMA), WORKLOAD, model)
    assert held.users < 2_000 < then.users


def test_each_raise_is_its_own_step(
    model: CapacityModel, request_2000: QuotaRequest, chart: Figure
) -> None:
    raises = quota_raises(CURRENT, request_2000, WORKLOAD, model)
    assert [r.kind for r in raises] == ["tpm", "rpm"]
    # TPM alone buys nothing while RPM binds; the RPM step reaches the requested point.
    assert math.floor(raises[0].users_after) == plan_capacity(CURRENT, WORKLOAD, model).users_whole
    assert raises[0].binding_after == "rpm"
    main = chart.axes[0]
    arrows = [c for c in main.get_children() if isinstance(c, Annotation)]
    assert len(arrows) == 2
    labels = _legend(main)
    assert any(t.startswith("step 1: raise TPM 600k") for t in labels)
    assert any(t.startswith("step 2: raise RPM 800") for t in labels)


def test_latency_at_the_target_is_beside_it(chart: Figure) -> None:
    side = chart.axes[1]
    labels = _legend(side)
    target = [t for t in labels if t.startswith("target:")]
    assert target and "in flight" in target[0]
    assert ("extrapolated" in target[0]) or ("within the measured range" in target[0])
    assert "measured range" in labels


def test_without_a_model_the_side_says_latency_is_assumed() -> None:
    request = required_quota(
        WORKLOAD, 2_000, model_id=LLAMA, scope=CURRENT.scope, rpm_enforced=True
    )
    fig = plot_quota_ask(CURRENT, request, WORKLOAD)
    texts = " ".join(t.get_text() for t in fig.axes[1].texts)
    assert "no fitted model" in texts and "requests in flight" in texts


def test_a_request_short_of_the_target_says_so(model: CapacityModel) -> None:
    # RPM not asked for (Bedrock no longer enforces Llama's) while the account still holds 800:
    request = required_quota(WORKLOAD, 2_000, model, model_id=LLAMA, scope=CURRENT.scope)
    assert request.rpm is None
    fig = plot_quota_ask(CURRENT, request, WORKLOAD, model)
    (label,) = [t for t in _legend(fig.axes[0]) if t.startswith("requested:")]
    assert label.endswith("— short of the target: rpm still binds, not raised")
