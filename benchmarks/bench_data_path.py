"""Training throughput (images/s) of three input pipelines for the same model, data and batch size:

  pure compute  forward + backward + step on batches made beforehand (the ceiling)
  fast path     wmstudio's BatchStream: uint8 tensors on the device, whole-batch crop/flip/normalise
  DataLoader    torchvision ImageFolder/PIL + RandomCrop/RandomHorizontalFlip/ToTensor/Normalize

on the built-in digits and on the CIFAR-10 ImageFolder tree (../shared/data). Run:
    .venv/bin/python benchmarks/bench_data_path.py [--steps 40] [--model small_cnn]
Targets (2-core CPU): fast path within 10% of pure compute; >= 1.5x the DataLoader on CIFAR-10.
"""

from __future__ import annotations

import argparse
import itertools
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from wmstudio.data import load_dataset
from wmstudio.data.batches import Augment, BatchStream, Normalizer, Source
from wmstudio.data.tensorset import ImageTensors
from wmstudio.models import build_model

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
BATCH = 128


FORMAT = torch.channels_last  # what the engine uses for the registry's conv nets (run.channels_last)


def train_rate(arch: str, shape: tuple[int, int, int], batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
               steps: int, warmup: int = 5) -> float:
    """The same model, layout and training step for every pipeline; only the batches differ."""
    torch.manual_seed(0)
    model = build_model(arch, shape[0], 10, shape[1]).to(memory_format=FORMAT)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    n, start = 0, 0.0
    for i, (x, y) in enumerate(itertools.islice(batches, warmup + steps)):
        if i == warmup:
            start, n = time.perf_counter(), 0
        loss = F.cross_entropy(model(x.contiguous(memory_format=FORMAT)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - start)


def endless(make: Callable[[], object]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from make()  # type: ignore[misc]


def fast_batches(data: ImageTensors, norm: Normalizer, aug: Augment) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    stream = BatchStream(Source(data.images, data.labels, aug), BATCH, norm, torch.Generator().manual_seed(0),
                         memory_format=FORMAT)
    return endless(lambda: stream)


def premade(data: ImageTensors, norm: Normalizer, aug: Augment, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    made = list(itertools.islice(fast_batches(data, norm, aug), count))
    return itertools.cycle(made)


def loader_batches(dataset: torch.utils.data.Dataset, workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0, drop_last=True)
    return endless(lambda: loader)




class ArrayPIL(torch.utils.data.Dataset):
    """Digits as PIL images (the usual torchvision pattern for in-memory arrays)."""

    def __init__(self, data: ImageTensors, transform) -> None:  # noqa: ANN001
        from PIL import Image

        self.images = [Image.fromarray(a[0]) for a in data.images.numpy()]
        self.labels = data.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.transform(self.images[i]), self.labels[i]


def report(name: str, rates: dict[str, float]) -> None:
    pure, fast = rates["pure compute"], rates["fast path"]
    loader = max(v for k, v in rates.items() if k.startswith("DataLoader"))
    print(f"\n== {name} (batch {BATCH}, {torch.get_num_threads()} threads, {str(FORMAT).split('.')[-1]})")
    for k, v in rates.items():
        print(f"  {k:<26} {v:10.0f} images/s   {v / pure:6.2f}x pure compute")
    print(f"  fast path / pure compute   {fast / pure:6.2f}   (target >= 0.90)")
    print(f"  fast path / best DataLoader{fast / loader:6.2f}x  (target >= 1.5x on CIFAR-10)")


def bench(name: str, arch: str, data: ImageTensors, dataset_for_loader: Callable, steps: int, flip: bool) -> None:
    import torchvision.transforms as T

    norm = Normalizer.fit(data.images)
    c, h, _ = data.shape
    pad = max(1, h // 8)
    aug = Augment(pad, flip)
    tf = T.Compose([T.RandomCrop(h, padding=pad)] + ([T.RandomHorizontalFlip()] if flip else [])
                   + [T.ToTensor(), T.Normalize(norm.mean, norm.std)])
    rates = {"pure compute": train_rate(arch, data.shape, premade(data, norm, aug, 16), steps),
             "fast path": train_rate(arch, data.shape, fast_batches(data, norm, aug), steps)}
    for workers in (0, 2):
        rates[f"DataLoader ({workers} workers)"] = train_rate(arch, data.shape, loader_batches(dataset_for_loader(tf), workers), steps)
    report(f"{name}, model {arch}", rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="timed training steps per pipeline")
    ap.add_argument("--model", default="small_cnn", help="model for both data sets (default: the default CPU model)")
    ap.add_argument("--nchw", action="store_true", help="plain NCHW layout instead of the engine's channels-last")
    args = ap.parse_args()
    if args.nchw:
        global FORMAT
        FORMAT = torch.contiguous_format
    torch.manual_seed(0)
    digits = load_dataset("digits").train
    bench("digits (built in)", args.model, digits, lambda tf: ArrayPIL(digits, tf), args.steps, flip=False)
    if not CIFAR.is_file():
        print(f"\nCIFAR-10 skipped: {CIFAR} not found")
        return
    import torchvision

    cifar = load_dataset("imagefolder", CIFAR).train
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(CIFAR) as tar:  # the DataLoader baseline reads JPEG files from disk, as usual
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.name.startswith("train")], filter="data")
        bench("CIFAR-10 ImageFolder (JPEG files)", args.model, cifar,
              lambda tf: torchvision.datasets.ImageFolder(str(Path(tmp) / "train"), transform=tf), args.steps, flip=True)


if __name__ == "__main__":
    main()
