"""An image data set held as one uint8 tensor (N, C, H, W) and its labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ImageTensors:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"{self.name}: {self.images.shape[0]} images but {self.labels.shape[0]} labels")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    def subset(self, index: torch.Tensor | np.ndarray, name: str | None = None) -> ImageTensors:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageTensors(self.images[idx.to(self.images.device)], self.labels[idx.to(self.labels.device)],
                            self.classes, name or self.name)

    def to(self, device: torch.device | str) -> ImageTensors:
        return ImageTensors(self.images.to(device), self.labels.to(device), self.classes, self.name)

    @staticmethod
    def from_numpy(images: np.ndarray, labels: np.ndarray, classes: list[str], name: str,
                   layout: str = "NHWC") -> ImageTensors:
        """Wrap uint8 arrays; ``layout`` is NHWC, NHW (grey) or NCHW."""
        x = np.asarray(images, dtype=np.uint8)
        if not x.flags.writeable:
            x = x.copy()
        if layout == "NHW":
            x = x[:, None]
        elif layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        return ImageTensors(torch.from_numpy(np.ascontiguousarray(x)),
                            torch.as_tensor(np.asarray(labels), dtype=torch.long), list(classes), name)


@dataclass
class DataPair:
    """A data set's training and test splits."""

    train: ImageTensors
    test: ImageTensors
    name: str
    warnings: list[str] = field(default_factory=list)  # loading problems worth a word (recorded in the run log)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.train.shape

    @property
    def num_classes(self) -> int:
        return max(self.train.num_classes, self.test.num_classes)
