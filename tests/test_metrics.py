from __future__ import annotations

import math

import pytest
import torch

from wmstudio.metrics import DriftTracker, binomial_p_value
from wmstudio.models import build_model


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.1), (3, 10, 0.1), (10, 10, 0.1), (37, 100, 0.1), (5, 20, 0.5)])
def test_p_value_is_the_binomial_upper_tail(k: int, n: int, p: float) -> None:
    exact = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert binomial_p_value(k, n, p) == pytest.approx(exact, rel=1e-9)


def test_p_value_is_tiny_for_a_perfect_watermark() -> None:
    assert binomial_p_value(100, 100, 0.1) < 1e-90


def test_drift_of_identical_and_perturbed_models() -> None:
    torch.manual_seed(0)
    ref = build_model("small_cnn", 1, 10, 8)
    tracker = DriftTracker(ref)
    d0 = tracker.measure(ref)
    assert d0.l2 == 0 and d0.cos == pytest.approx(1.0)
    moved = build_model("small_cnn", 1, 10, 8)
    moved.load_state_dict(ref.state_dict())
    with torch.no_grad():
        moved.fc.weight.add_(0.5)
    d = tracker.measure(moved)
    expected = 0.5 * math.sqrt(moved.fc.weight.numel())
    assert d.l2 == pytest.approx(expected, rel=1e-6)
    names = tracker.layer_names
    assert names[-1] == "fc"
    assert d.layer_l2[-1] == pytest.approx(expected, rel=1e-6)
    assert all(v == 0 for v in d.layer_l2[:-1])
    assert d.cos < 1.0 and d.layer_cos[0] == pytest.approx(1.0)
