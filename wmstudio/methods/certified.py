"""Certified watermarks (Bansal et al., ICML 2022): randomized smoothing over the parameters.

After ``cert_warmup_epochs`` of plain training, every epoch starts with a robust trigger pass (and,
with ``cert_every_steps = N``, one follows every N-th training step as well): for
each noise level sigma_j = cert_sigma_step * j (j = 0 .. cert_levels-1), the trigger-loss gradient
is averaged over ``cert_draws`` Gaussian perturbations of the weights and the optimiser steps once;
then one normal epoch follows. Weight noise is scaled per tensor by that tensor's RMS, so one sigma
means the same relative disturbance in every layer (the radius below is in that normalised space).

Verification (:func:`certify`): the smoothed model's vote on each trigger under weight noise of
``cert_sigma``; with the Clopper-Pearson lower bound p of the watermark label's vote share, the
watermark provably survives any (normalised) weight perturbation of L2 norm below
sigma * Phi^-1(p) (Cohen et al. 2019, applied to parameters).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.data.batches import Normalizer
from wmstudio.events import StageDetail
from wmstudio.methods.common import embed_stream
from wmstudio.session import Session
from wmstudio.stages.training import StageHooks, train_stage


def _rms(params: list[nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().pow(2).mean().sqrt().clamp_min(1e-8) for p in params]


class CertifiedHooks(StageHooks):
    def __init__(self, s: Session) -> None:
        self.s = s
        e = s.cfg.embed
        self.warmup, self.levels, self.step, self.draws = e.cert_warmup_epochs, e.cert_levels, e.cert_sigma_step, e.cert_draws
        self.robust_passes = 0
        self.epoch = 0
        self.gen = torch.Generator(device=s.device).manual_seed(s.cfg.run.seed + 17)

    def before_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if epoch >= self.warmup:
            self.robust_pass()

    def after_step(self, step: int, opt: torch.optim.Optimizer) -> None:
        every = self.s.cfg.embed.cert_every_steps
        if every > 0 and self.epoch >= self.warmup and step % every == 0:
            self.robust_pass()

    def robust_pass(self) -> None:
        s, model, opt = self.s, self.s.model, self.opt
        assert s.trigger_images is not None and s.trigger_labels is not None
        x = s.normalizer(s.trigger_images).contiguous(memory_format=s.memory_format)
        y = s.trigger_labels
        params = [p for p in model.parameters() if p.requires_grad]
        was_training = model.training
        model.eval()  # BatchNorm: the running statistics, never updated by noisy models
        # the robust steps are plain gradient steps at the stage's current learning rate: they leave
        # the optimiser's state (momentum, Adam moments) to the normal epochs, which the large
        # gradients under weight noise would otherwise swamp
        lr = opt.param_groups[0]["lr"] * self.s.cfg.embed.cert_lr_scale
        try:
            for j in range(self.levels):
                sigma = self.step * j
                scales = _rms(params)
                for p in params:
                    p.grad = None
                for _ in range(self.draws if sigma > 0 else 1):
                    s.control.checkpoint()
                    noise = []
                    with torch.no_grad():
                        for p, r in zip(params, scales, strict=True):
                            n = torch.randn(p.shape, generator=self.gen, device=p.device) * (sigma * r)
                            p.add_(n)
                            noise.append(n)
                    loss = F.cross_entropy(model(x), y) / (self.draws if sigma > 0 else 1)
                    loss.backward()
                    with torch.no_grad():
                        for p, n in zip(params, noise, strict=True):
                            p.sub_(n)
                with torch.no_grad():
                    for p in params:
                        if p.grad is not None:
                            p.add_(p.grad, alpha=-lr)
                            p.grad = None
        finally:
            model.train(was_training)
        self.robust_passes += 1


@torch.no_grad()
def certify(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer, sigma: float,
            n: int = 100, alpha: float = 0.001, seed: int = 0,
            memory_format: torch.memory_format = torch.contiguous_format) -> dict[str, Any]:
    """Certified radius of each trigger under relative weight noise ``sigma`` (0 where it abstains)."""
    from scipy.stats import beta

    model.eval()
    x = normalizer(images).contiguous(memory_format=memory_format)
    params = list(model.parameters())
    scales = _rms(params)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    votes = torch.zeros(len(labels), dtype=torch.long, device=x.device)
    for _ in range(n):
        noise = []
        for p, r in zip(params, scales, strict=True):
            e = torch.randn(p.shape, generator=gen, device=p.device) * (sigma * r)
            p.add_(e)
            noise.append(e)
        votes += (model(x).argmax(1) == labels).long()
        for p, e in zip(params, noise, strict=True):
            p.sub_(e)
    k = votes.cpu().numpy()
    p_lower = np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)
    inv = NormalDist().inv_cdf
    radii = np.asarray([sigma * inv(min(pl, 1 - 1e-12)) if pl > 0.5 else 0.0 for pl in p_lower])
    return {"sigma": sigma, "n": n, "alpha": alpha, "radii": radii.tolist(), "mean_radius": float(radii.mean()),
            "certified_fraction": float((radii > 0).mean()),
            "robust_trigger_acc": {str(r): float((radii > r).mean()) for r in (0.0, 0.1, 0.25, 0.5, 1.0)},
            "units": "L2 norm of the weight perturbation, each tensor divided by its RMS"}


def run(s: Session) -> dict[str, float]:
    hooks = CertifiedHooks(s)
    s.method_state = hooks  # type: ignore[attr-defined]
    last = train_stage(s, "embed", s.cfg.embed, embed_stream(s), drift_reference="initial", hooks=hooks)
    assert s.trigger_images is not None and s.trigger_labels is not None
    cert = certify(s.model, s.trigger_images, s.trigger_labels, s.normalizer, s.cfg.embed.cert_sigma,
                   seed=s.cfg.run.seed, memory_format=s.memory_format)
    s.emit(StageDetail("embed", "certified_json", cert))
    s.certificate = cert  # type: ignore[attr-defined]
    from wmstudio.events import Warning as Note

    s.emit(Note(f"certified watermark: {cert['certified_fraction']:.0%} of triggers certified at sigma "
                f"{cert['sigma']}, mean radius {cert['mean_radius']:.3f} ({cert['units']})"))
    return last
