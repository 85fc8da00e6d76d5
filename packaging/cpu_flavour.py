"""Turns a copy of the app folder into the ``cpu`` flavour: deletes the CUDA libraries nothing links.

PyTorch's CUDA build links a core of CUDA libraries (cudart, cuBLAS, cuFFT, cuSPARSE, NCCL, ... by
DT_NEEDED from libtorch_cuda.so and libtorch_python.so), so those must stay or ``import torch``
fails, even on a machine without a GPU. The rest (cuDNN's kernels and engines, cuSOLVER, NVRTC's
builtins, ...) are only ``dlopen``-ed when a GPU computes: those go, and so does PyTorch's own
GPU-only ``libtorch_cuda_linalg.so`` (``dlopen``-ed at the first linear algebra on a GPU), with
cuSOLVER, which only it links.

    python packaging/cpu_flavour.py packaging/build/wmstudio-0.1.0-linux-x86_64-cpu
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path: Path) -> list[str]:
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")]


GPU_ONLY = {"libtorch_cuda_linalg.so"}  # PyTorch's libraries that nothing links, loaded on a GPU only


def cuda_libraries_to_drop(app: Path) -> list[Path]:
    internal = app / "_internal"
    elves = [p for p in internal.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]
    cuda = [p for p in elves if "nvidia" in p.relative_to(internal).parts or p.name in GPU_ONLY]
    by_name: dict[str, Path] = {}
    for p in elves:
        by_name.setdefault(p.name, p)
    for link in internal.rglob("*.so*"):  # PyInstaller links some sonames to the real file
        if link.is_symlink() and link.resolve().exists():
            by_name.setdefault(link.name, link.resolve())
    todo = [p for p in elves if p not in cuda] + [app / "wmstudio"]
    kept: set[Path] = set()
    while todo:
        p = todo.pop()
        for name in needed(p):
            dep = by_name.get(name)
            if dep is not None and dep.resolve() not in kept:
                kept.add(dep.resolve())
                todo.append(dep)
    return [p for p in cuda if p.resolve() not in kept]


def main(app: str) -> int:
    root = Path(app)
    drop = cuda_libraries_to_drop(root)
    freed = sum(p.stat().st_size for p in drop)
    for p in drop:
        p.unlink()
    for link in (root / "_internal").rglob("*"):  # links left pointing at nothing
        if link.is_symlink() and not link.exists():
            link.unlink()
    print(f"{root}: removed {len(drop)} CUDA libraries that nothing links ({freed / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
