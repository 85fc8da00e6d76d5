"""The hot loop: clean and trigger loss/accuracy of one model at many points in parameter space.

The model is built once. For each point the flat parameter vector is copied into the model in
place; the clean and trigger images were normalised once, up front, into one device tensor, so a
point costs one forward pass over both sets in large batches under inference mode, and one
host synchronisation for the four numbers.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.data.batches import Normalizer
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.fold import fold_batchnorm

Values = dict[str, float]


class PointEvaluator:
    def __init__(self, model: nn.Module, clean_images: torch.Tensor, clean_labels: torch.Tensor,
                 trigger_images: torch.Tensor, trigger_labels: torch.Tensor, normalizer: Normalizer,
                 memory_format: torch.memory_format = torch.contiguous_format, batch_size: int = 1024,
                 bn_images: torch.Tensor | None = None, bn_batch_size: int = 256, fold_bn: bool = True) -> None:
        self.model = model.eval()
        self.pv = ParamVector(model)
        self.batch_size = batch_size
        self.memory_format = memory_format
        self.n_clean, self.n_trigger = len(clean_labels), len(trigger_labels)
        images = torch.cat([clean_images, trigger_images.to(clean_images.device)])
        self.labels = torch.cat([clean_labels, trigger_labels.to(clean_labels.device)])
        self.inputs = normalizer(images).contiguous(memory_format=memory_format)
        self._loss = torch.empty(len(self.labels), device=images.device)
        self._correct = torch.empty(len(self.labels), device=images.device, dtype=torch.bool)
        self.bn_modules = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.bn_inputs = None
        if bn_images is not None and self.bn_modules:
            x = normalizer(bn_images).contiguous(memory_format=memory_format)
            self.bn_inputs = list(torch.split(x, bn_batch_size))
        self.folded = fold_batchnorm(model, memory_format) if fold_bn else None
        self.forward = self.folded.module if self.folded is not None else self.model
        if batch_size <= 0:
            self.batch_size = self._fastest_batch_size()

    def _fastest_batch_size(self) -> int:
        """The batch size with the best throughput on this machine (activations that fit in cache win on a CPU)."""
        n = len(self.labels)
        candidates = sorted({min(n, c) for c in (128, 256, 384, 512, 1024, 2048)})
        if len(candidates) == 1 or self.inputs.device.type != "cpu":
            return candidates[-1]
        best, best_time = candidates[-1], float("inf")
        with torch.inference_mode():
            for bs in candidates:
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    for s in range(0, n, bs):
                        self.forward(self.inputs[s:s + bs])
                    times.append(time.perf_counter() - start)
                if min(times) < best_time:
                    best, best_time = bs, min(times)
        return best

    def forward_only(self) -> None:
        """The model's pure forward pass over the same batches (the throughput ceiling)."""
        with torch.inference_mode():
            for start in range(0, len(self.labels), self.batch_size):
                self.model(self.inputs[start:start + self.batch_size])

    def _recompute_bn(self) -> None:
        saved = [m.momentum for m in self.bn_modules]
        for m in self.bn_modules:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
            m.train()
        try:
            with torch.no_grad():
                for x in self.bn_inputs or []:
                    self.model(x)
        finally:
            for m, mom in zip(self.bn_modules, saved, strict=True):
                m.momentum = mom
                m.eval()

    def evaluate(self, flat: torch.Tensor | None = None, buffers: dict[str, torch.Tensor] | None = None) -> Values:
        """Metrics at ``flat`` (None: the model as it is), with ``buffers`` copied in first if given."""
        if flat is not None:
            self.pv.set_(flat)
        if buffers:
            named = dict(self.model.named_buffers())
            for k, v in buffers.items():
                named[k].copy_(v)
        if self.bn_inputs is not None:
            self._recompute_bn()
        if self.folded is not None:
            self.folded.refold()
        with torch.inference_mode():
            for start in range(0, len(self.labels), self.batch_size):
                stop = start + self.batch_size
                out = self.forward(self.inputs[start:stop])
                y = self.labels[start:stop]
                self._loss[start:stop] = F.cross_entropy(out, y, reduction="none")
                torch.eq(out.argmax(1), y, out=self._correct[start:stop])
            nc = self.n_clean
            sums = torch.stack([self._loss[:nc].sum(), self._correct[:nc].sum().float(),
                                self._loss[nc:].sum(), self._correct[nc:].sum().float()]).tolist()
        nan = float("nan")
        return {"test_loss": sums[0] / nc if nc else nan, "test_acc": sums[1] / nc if nc else nan,
                "trigger_loss": sums[2] / self.n_trigger if self.n_trigger else nan,
                "trigger_acc": sums[3] / self.n_trigger if self.n_trigger else nan}
