"""The hot loop: clean and trigger loss/accuracy of one model at many points in parameter space.

The model is built once. For each point the flat parameter vector is copied into the model in
place; the clean and trigger images were normalised once, up front, into one device tensor, so a
point costs one forward pass over both sets under inference mode, and one host synchronisation
for the four numbers. With ``precision = "bf16"`` the clean images' forward pass runs under bf16
autocast; the trigger images' always runs in fp32, so trigger accuracy never depends on the precision
(``wmstudio.landscape.precision_check`` decides whether bf16 may be used). Set-up puts the model in channels-last where that checks out (layout.py),
folds its BatchNorm into its convolutions where it can (fold.py), and takes the batch size from a
short probe or its cache (batchsize.py); ``notes`` says what was chosen, for the landscape's log.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.data.batches import Normalizer
from wmstudio.landscape.batchsize import BatchChoice, choose_batch_size
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.fold import fold_for_eval
from wmstudio.landscape.layout import CHECK_IMAGES, choose_layout

Values = dict[str, float]


class PointEvaluator:
    """Evaluates ``model`` at points; set-up decides, checks and records (in ``notes``) the model's
    memory layout, its BatchNorm folding and the batch size."""

    def __init__(self, model: nn.Module, clean_images: torch.Tensor, clean_labels: torch.Tensor,
                 trigger_images: torch.Tensor, trigger_labels: torch.Tensor, normalizer: Normalizer,
                 memory_format: torch.memory_format = torch.contiguous_format, batch_size: int = 0,
                 bn_images: torch.Tensor | None = None, bn_batch_size: int = 256, fold_bn: bool = True,
                 cache_dir: Path | None = None, probe_precision: str = "fp32") -> None:
        self.model = model.eval()
        self.n_clean, self.n_trigger = len(clean_labels), len(trigger_labels)
        images = normalizer(torch.cat([clean_images, trigger_images.to(clean_images.device)]))
        self.labels = torch.cat([clean_labels, trigger_labels.to(clean_labels.device)])
        # the layout first: it may convert the parameters (the same Parameter objects, new storage)
        self.memory_format, layout_note = choose_layout(model, images, memory_format)
        self.pv = ParamVector(model)
        self.inputs = images.contiguous(memory_format=self.memory_format)
        del images
        self._loss = torch.empty(len(self.labels), device=self.inputs.device)
        self._correct = torch.empty(len(self.labels), device=self.inputs.device, dtype=torch.bool)
        self.bn_modules = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.bn_inputs = None
        if bn_images is not None and self.bn_modules:
            x = normalizer(bn_images).contiguous(memory_format=self.memory_format)
            self.bn_inputs = list(torch.split(x, bn_batch_size))
        if fold_bn:
            self.folded, fold_note = fold_for_eval(model, self.inputs[:CHECK_IMAGES], self.memory_format)
        else:
            self.folded, fold_note = None, "not folded (switched off)"
        self.forward = self.folded.module if self.folded is not None else self.model
        self._cache_dir = cache_dir
        self.batch_size = batch_size
        if batch_size > 0:
            self.batch_choice = BatchChoice(batch_size, "set", 0.0, f"{batch_size} (set by the landscape's batch_size)")
            self._probed, self._batch_note = "", self.batch_choice.note  # no probe: any precision uses the set size
        else:
            self._measure_batch_size(probe_precision)
        self.precision = "fp32"  # or "bf16": the clean images under bf16 autocast (use_precision)
        self.notes = {"eval_layout": layout_note, "eval_batchnorm": fold_note,
                      "eval_batch_size": self._batch_note}

    def _measure_batch_size(self, precision: str) -> None:
        """The batch size from a short probe (or its cache) of the forward pass in ``precision``: the best
        size differs (ResNet-20 on a Xeon with AMX: fp32 chose 128, where a bf16 point took 204 ms against
        181-185 ms at 256-512); the cache keeps the two apart."""
        setting = f"{self.memory_format}, {'folded' if self.folded is not None else 'unfolded'}"
        if precision == "bf16":
            setting += ", bf16 autocast"
        low = torch.autocast(self.inputs.device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
        with low:
            self.batch_choice = choose_batch_size(self.forward, self.model, self.inputs, setting, self._cache_dir)
        self.batch_size = self.batch_choice.size
        self._probed = precision
        self._batch_note = self.batch_choice.note + (" (measured under bf16 autocast)" if precision == "bf16" else "")

    def use_precision(self, precision: str) -> None:
        """Evaluate the points in ``precision`` (fp32 | bf16); a measured batch size is measured again when
        it was measured in the other precision."""
        self.precision = precision
        if self._probed and self._probed != precision and self.batch_choice.source not in ("device", "all images"):
            self._measure_batch_size(precision)
            self.notes["eval_batch_size"] = self._batch_note

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
        n, nc = len(self.labels), self.n_clean
        # bf16: the clean images under autocast, then the trigger images in fp32; fp32: one pass over both
        parts = [(0, nc, True), (nc, n, False)] if self.precision == "bf16" else [(0, n, False)]
        with torch.inference_mode():
            for lo, hi, low in parts:
                with torch.autocast(self.inputs.device.type, dtype=torch.bfloat16) if low else nullcontext():
                    for start in range(lo, hi, self.batch_size):
                        stop = min(start + self.batch_size, hi)
                        out = self.forward(self.inputs[start:stop]).float()  # the loss and argmax in fp32
                        y = self.labels[start:stop]
                        self._loss[start:stop] = F.cross_entropy(out, y, reduction="none")
                        torch.eq(out.argmax(1), y, out=self._correct[start:stop])
            sums = torch.stack([self._loss[:nc].sum(), self._correct[:nc].sum().float(),
                                self._loss[nc:].sum(), self._correct[nc:].sum().float()]).tolist()
        nan = float("nan")
        return {"test_loss": sums[0] / nc if nc else nan, "test_acc": sums[1] / nc if nc else nan,
                "trigger_loss": sums[2] / self.n_trigger if self.n_trigger else nan,
                "trigger_acc": sums[3] / self.n_trigger if self.n_trigger else nan}

    def clean_correct(self) -> torch.Tensor:
        """Which clean images the last :meth:`evaluate` got right (a copy; bool, one per clean image)."""
        return self._correct[:self.n_clean].clone()
