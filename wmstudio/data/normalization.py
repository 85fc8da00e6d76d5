"""Which mean/std the model's inputs are normalised with (``data.normalize``).

- ``fit``: the owner's training images' own per-channel mean/std (the engine's original behaviour);
- ``imagenet`` / ``cifar10``: the usual published constants (every torchvision pretrained weight file
  expects ``imagenet``);
- ``custom``: ``data.mean`` / ``data.std``;
- ``auto`` (the default): what the checkpoint or model file declares
  (:mod:`wmstudio.models.declared`), else ``fit``.

The choice made is recorded in the run log (``/data`` ``info_json``: ``mean``, ``std``,
``normalize``, ``normalize_source``) and every later reader (landscapes, extraction, verification)
normalises with the recorded values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmstudio.data.batches import Normalizer
from wmstudio.errors import ConfigError

PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


@dataclass(frozen=True)
class DeclaredNormalization:
    """Mean/std a checkpoint or model file states it was trained with; ``source`` says which file."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # e.g. "checkpoint resnet20.th", "model file net.py"


def _checked(mean: tuple[float, ...], std: tuple[float, ...], channels: int, where: str, what: str,
             hint: str = "") -> Normalizer:
    if len(mean) != channels:
        raise ConfigError(where, f"{what} has {len(mean)} channel value(s) but the images have {channels} "
                                 f"channel(s){hint}")
    return Normalizer(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def choose_normalizer(normalize: str, owner_images: torch.Tensor, declared: DeclaredNormalization | None = None,
                      mean: list[float] | tuple[float, ...] = (), std: list[float] | tuple[float, ...] = (),
                      ) -> tuple[Normalizer, str, str]:
    """(normaliser, mode used, source) for the ``data.normalize`` setting and the owner's uint8 images.

    The mode used is ``fit``, ``imagenet``, ``cifar10``, ``custom`` or ``declared``; source names the
    file a declared normalisation came from (else ""), and are also set on the normaliser
    (``mode``, ``source``). Channel counts are checked against the images.
    """
    norm, mode, source = _choose(normalize, owner_images, declared, mean, std)
    norm.mode, norm.source = mode, source
    return norm, mode, source


def _choose(normalize: str, owner_images: torch.Tensor, declared: DeclaredNormalization | None,
            mean: list[float] | tuple[float, ...], std: list[float] | tuple[float, ...]) -> tuple[Normalizer, str, str]:
    c = int(owner_images.shape[1])
    hint = "; set data.channels = 3 to repeat grey images" if c == 1 else ""
    if normalize == "auto":
        normalize = "declared" if declared is not None else "fit"
    if normalize == "fit":
        return Normalizer.fit(owner_images), "fit", ""
    if normalize in PRESETS:
        m, s = PRESETS[normalize]
        return _checked(m, s, c, "data.normalize", normalize, hint), normalize, ""
    if normalize == "custom":
        if len(std) != len(mean):
            raise ConfigError("data.std", f"{len(std)} values but data.mean has {len(mean)}")
        return _checked(tuple(mean), tuple(std), c, "data.mean", "data.mean", hint), "custom", ""
    if normalize == "declared" and declared is not None:
        return (_checked(declared.mean, declared.std, c, "data.normalize", f"the normalisation declared by the "
                         f"{declared.source}", hint), "declared", declared.source)
    raise ConfigError("data.normalize", f"unknown normalisation {normalize!r}")
