"""A CIFAR ResNet named the way the widely shared public CIFAR-10 ResNet checkpoints name it.

Those files (``resnet20-*.th``: ``{"state_dict": ...}`` saved from a DataParallel model by an old
PyTorch, so every key starts with ``module.`` and BatchNorm has no ``num_batches_tracked``) call the
classifier ``linear`` and use parameter-free "option A" shortcuts. wmstudio's registry ``resnet20``
calls its head ``fc``, so the registry model reports "the same tensors under other names
(linear.weight -> fc.weight)"; this file gives the checkpoint the names it expects.

Use it with ``model.file = "docs/byom/cifar_resnet.py"`` and ``model.factory = "resnet20"``.
"""

import torch
import torch.nn.functional as F
from torch import nn


class ZeroPadShortcut(nn.Module):
    """Halve the resolution and zero-pad the new channels (no parameters)."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class Block(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = ZeroPadShortcut(planes) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for i, planes in enumerate((16, 32, 64)):
            blocks = []
            for j in range(blocks_per_stage):
                blocks.append(Block(in_planes, planes, 2 if i > 0 and j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    return ResNet(3, num_classes, in_channels)
