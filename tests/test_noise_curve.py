"""`wmstudio noise-curve`: a watermark under Gaussian weight noise, with intervals over the triggers."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from wmstudio.data.batches import Normalizer
from wmstudio.metrics.evaluate import predict
from wmstudio.metrics.noise_curve import mean_interval, noise_curve

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread (conftest.py)


def _setup(n_trig: int = 30, n_test: int = 60):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    gen = torch.Generator().manual_seed(1)
    trig = torch.randint(0, 256, (n_trig, 3, 8, 8), generator=gen, dtype=torch.uint8)
    ctrl = torch.randint(0, 256, (n_trig, 3, 8, 8), generator=gen, dtype=torch.uint8)
    test = torch.randint(0, 256, (n_test, 3, 8, 8), generator=gen, dtype=torch.uint8)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    trig_y = predict(model, trig, norm)  # the model "carries" a watermark on every trigger
    test_y = predict(model, test, norm)
    return model, norm, trig, trig_y, ctrl, test, test_y


def test_no_noise_is_the_model_itself_and_the_weights_come_back_exactly() -> None:
    model, norm, trig, trig_y, ctrl, test, test_y = _setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pts = noise_curve(model, norm, trig, trig_y, ctrl, test, test_y, [0.0, 0.5, 3.0], draws=5, seed=3)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    p0, p_mid, p_big = pts
    assert p0.draws == 1 and p0.trigger_acc == 1.0 and p0.test_acc == 1.0
    expected_ctrl = float((predict(model, ctrl, norm) == trig_y).double().mean())
    assert p0.control_acc == pytest.approx(expected_ctrl)
    assert p0.effect == pytest.approx(1.0 - expected_ctrl)
    # all triggers kept: not a zero-width interval but Wilson's for 30 of 30
    assert p0.trigger_hi == 1.0 and 0.85 < p0.trigger_lo < 0.9
    # large noise scrambles the model: the trigger accuracy falls towards chance (4 classes)
    assert p_big.draws == 5 and p_big.trigger_acc < 0.6 and p_big.test_acc < 0.6
    for p in pts:
        assert 0.0 <= p.trigger_lo <= p.trigger_acc <= p.trigger_hi <= 1.0
        assert -1.0 <= p.effect_lo <= p.effect <= p.effect_hi <= 1.0
        assert p.test_acc_min <= p.test_acc <= p.test_acc_max
    again = noise_curve(model, norm, trig, trig_y, ctrl, test, test_y, [0.0, 0.5, 3.0], draws=5, seed=3)
    assert again == pts  # the same seed, the same curve
    other = noise_curve(model, norm, trig, trig_y, ctrl, test, test_y, [3.0], draws=5, seed=4)
    assert other[0] != p_big


def test_without_a_control_set_the_effect_is_not_invented() -> None:
    model, norm, trig, trig_y, _, test, test_y = _setup()
    (p,) = noise_curve(model, norm, trig, trig_y, None, test, test_y, [0.1], draws=2)
    assert math.isnan(p.control_acc) and math.isnan(p.effect) and p.trigger_acc > 0.5


def test_the_interval_is_a_t_interval_over_the_triggers() -> None:
    from scipy.stats import t

    v = torch.tensor([1.0, 0.5, 0.75, 0.25, 1.0, 0.0])
    mean, lo, hi = mean_interval(v, 0.0, 1.0)
    half = t.ppf(0.975, 5) * float(v.double().std()) / math.sqrt(6)
    assert mean == pytest.approx(0.5833333) and lo == pytest.approx(max(0.0, mean - half))
    assert hi == pytest.approx(min(1.0, mean + half))
    same = mean_interval(torch.zeros(20), -1.0, 1.0)  # all alike: Wilson's on the mapped range, with width
    assert same[0] == 0.0 and same[1] < 0.0 < same[2]


@pytest.mark.parametrize("bad, message", [(["--scales", "0,x"], "comma-separated numbers"),
                                          (["--scales", "-1"], "scales: -1.0"),
                                          (["--draws", "0"], "draws: 0")])
def test_bad_arguments_are_refused_with_the_field_named(demo_copy, capsys, bad, message) -> None:
    from wmstudio.cli import main

    with pytest.raises(SystemExit) if "numbers" in message else _nothing():
        assert main(["noise-curve", str(demo_copy), *bad]) == 2
    assert message in capsys.readouterr().err


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_cli_prints_a_curve_per_log_and_writes_json(demo_copy, tmp_path, capsys) -> None:
    from wmstudio.cli import main
    from wmstudio.runlog_reader import RunLogReader

    out = tmp_path / "curve.json"
    args = ["noise-curve", str(demo_copy), str(demo_copy), "--scales", "0,0.2", "--draws", "3",
            "--test-images", "100", "--json", str(out), "--plot", str(tmp_path / "curve.png"), "-q"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.count("embed.method = plain") == 2 and "trigger acc [95%]" in text
    data = json.loads(out.read_text())
    assert data["format"] == "wmstudio-noise-curve" and len(data["curves"]) == 2
    c = data["curves"][0]
    assert c["test_images"] == 100 and [p["scale"] for p in c["points"]] == [0.0, 0.2]
    assert [p["draws"] for p in c["points"]] == [1, 3]
    # the no-noise row is the stage's own trigger accuracy as the run recorded it
    recorded = RunLogReader(demo_copy).stage("embed").final("trigger_acc")
    assert c["points"][0]["trigger_acc"] == pytest.approx(float(recorded))
    png = tmp_path / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(args) == 2  # the files exist: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["noise-curve", str(demo_copy), "--stage", "nope", "-q"]) == 2
    assert "stage 'nope' has no saved weights" in capsys.readouterr().err
