"""A watermark under Gaussian weight noise: trigger accuracy, its control and test accuracy per noise scale.

What a certified watermark (Bansal et al.) is built for: keeping its triggers under random weight
perturbations. For each scale s, ``draws`` perturbed copies of the model get, on every parameter
tensor, Gaussian noise of std s times that tensor's RMS (the scale of ``attack.kind = "noise"`` and of
the certified method's sigma). Per draw the copy predicts the trigger set, its control set and
``test_images`` test images.

Per scale the result holds the mean over draws of the trigger accuracy, the control rate, the
watermark effect (trigger - control) and the test accuracy. Intervals are Student t over the
*triggers*: trigger i's survival rate is the share of draws in which it keeps its label, and the
interval of their mean treats the trigger set as a sample of the scheme's triggers (the spread over
draws is inside each survival rate). The effect's interval is the same over the paired differences
(trigger i's survival rate minus control image i's). Two models compared at equal test accuracy is a
reading of two such curves side by side, not a property of one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from wmstudio.data.batches import Normalizer
from wmstudio.errors import ConfigError
from wmstudio.metrics.evaluate import predict

LEVEL = 0.95


@dataclass(frozen=True)
class NoisePoint:
    scale: float
    draws: int
    trigger_acc: float
    trigger_lo: float
    trigger_hi: float
    control_acc: float  # nan without a control set
    effect: float
    effect_lo: float
    effect_hi: float
    test_acc: float
    test_acc_min: float  # the lowest test accuracy of the draws
    test_acc_max: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def mean_interval(values: torch.Tensor, lo: float, hi: float, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and Student t-interval of ``values`` (one per trigger), clipped to [lo, hi]; where all values
    are equal, Wilson's interval instead (a t-interval would have no width)."""
    from scipy.stats import t

    v = values.double()
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan
    sd = float(v.std(unbiased=True))
    if sd == 0.0:  # every trigger alike (all kept, or none): no spread to estimate from, so not a zero-width
        # interval but Wilson's for that share of n triggers, on the [lo, hi] range mapped to [0, 1]
        from wmstudio.sweep.intervals import wilson

        w = wilson((mean - lo) / (hi - lo) * n, n, level)
        return mean, lo + w.lo * (hi - lo), lo + w.hi * (hi - lo)
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, max(lo, mean - half), min(hi, mean + half)


@torch.no_grad()
def _perturb(params: list[nn.Parameter], scale: float, gen: torch.Generator) -> list[torch.Tensor]:
    noise = []
    for p in params:
        rms = p.detach().float().pow(2).mean().sqrt()
        n = (torch.randn(p.shape, generator=gen) * (scale * rms)).to(p.device, p.dtype)
        p.add_(n)
        noise.append(n)
    return noise


def check_scales(scales: Sequence[float], draws: int) -> None:
    if not scales:
        raise ConfigError("scales", "at least one noise scale is needed")
    for s in scales:
        if not math.isfinite(s) or s < 0 or s > 10:
            raise ConfigError("scales", f"{s!r}: a scale is a std relative to each tensor's RMS, 0 to 10")
    if draws < 1:
        raise ConfigError("draws", f"{draws}: at least one draw per scale")


def noise_curve(model: nn.Module, normalizer: Normalizer, trigger_images: torch.Tensor, trigger_labels: torch.Tensor,
                control_images: torch.Tensor | None, test_images: torch.Tensor, test_labels: torch.Tensor,
                scales: Sequence[float], draws: int, seed: int = 0,
                memory_format: torch.memory_format = torch.contiguous_format,
                progress: Callable[[int, int], None] | None = None) -> list[NoisePoint]:
    """The curve (one point per scale); the model's weights are the same afterwards as before."""
    check_scales(scales, draws)
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: list[NoisePoint] = []
    total, done = len(scales) * draws, 0
    try:
        for scale in scales:
            n_draws = draws if scale > 0 else 1  # no noise: one evaluation is all there is
            kept_t = torch.zeros(len(trigger_labels), dtype=torch.float64)
            kept_c = torch.zeros(len(trigger_labels), dtype=torch.float64)
            tests: list[float] = []
            for _ in range(n_draws):
                noise = _perturb(params, scale, gen) if scale > 0 else []
                try:
                    pt = predict(model, trigger_images, normalizer, memory_format=memory_format)
                    kept_t += (pt == trigger_labels).double().cpu()
                    if control_images is not None:
                        pc = predict(model, control_images, normalizer, memory_format=memory_format)
                        kept_c += (pc == trigger_labels).double().cpu()
                    ptest = predict(model, test_images, normalizer, memory_format=memory_format)
                    tests.append(float((ptest == test_labels).double().mean()))
                finally:
                    with torch.no_grad():
                        for p, n in zip(params, noise, strict=False):
                            p.sub_(n)
                done += 1 if scale > 0 else draws
                if progress is not None:
                    progress(done, total)
            surv_t, surv_c = kept_t / n_draws, kept_c / n_draws
            t_mean, t_lo, t_hi = mean_interval(surv_t, 0.0, 1.0)
            if control_images is not None:
                c_mean = float(surv_c.mean())
                e_mean, e_lo, e_hi = mean_interval(surv_t - surv_c, -1.0, 1.0)
            else:
                c_mean, e_mean, e_lo, e_hi = math.nan, math.nan, math.nan, math.nan
            out.append(NoisePoint(float(scale), n_draws, t_mean, t_lo, t_hi, c_mean, e_mean, e_lo, e_hi,
                                  sum(tests) / len(tests), min(tests), max(tests)))
    finally:
        with torch.no_grad():  # exact restore: subtracting the noise again leaves rounding residue
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
    return out


def format_curve(points: Sequence[NoisePoint]) -> str:
    lines = [f"{'scale':>6} {'draws':>5}  {'trigger acc [95%]':<22} {'control':>7}  {'effect [95%]':<24} {'test acc':>8}"]
    for p in points:
        ctrl = f"{p.control_acc:7.3f}" if math.isfinite(p.control_acc) else f"{'-':>7}"
        eff = (f"{p.effect:+.3f} [{p.effect_lo:+.3f}, {p.effect_hi:+.3f}]" if math.isfinite(p.effect) else "-")
        lines.append(f"{p.scale:6.3f} {p.draws:5d}  {p.trigger_acc:.3f} [{p.trigger_lo:.3f}, {p.trigger_hi:.3f}]"
                     f"{'':<4} {ctrl}  {eff:<24} {p.test_acc:8.3f}")
    return "\n".join(lines)
