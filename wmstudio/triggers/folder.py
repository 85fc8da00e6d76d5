"""Trigger sets as folders of PNGs: the user-supplied scheme, and export/reload of any trigger set.

A folder holds either ``labels.csv`` (columns ``file,label`` and optionally ``source_label``) next to
the images, or one subfolder per integer label (``3/img.png``). ``trigger.json``, written on export,
keeps the original scheme, seed and parameters.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from wmstudio.errors import TriggerError
from wmstudio.triggers.base import BuildContext, TriggerSet
from wmstudio.triggers.imageops import fit_shape

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("L" if img.mode in ("L", "1", "I;16") else "RGB"), dtype=np.uint8)
    except Exception as exc:
        raise TriggerError(f"{path}: not a readable image ({exc})") from exc
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _entries(root: Path) -> list[tuple[Path, int, int]]:
    csv_path = root / "labels.csv"
    if csv_path.is_file():
        rows = []
        with csv_path.open(newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    rows.append((root / row["file"], int(row["label"]), int(row.get("source_label") or -1)))
                except (KeyError, ValueError, TypeError) as exc:
                    raise TriggerError(f"{csv_path}:{n}: expected columns file,label with an integer label ({exc})") from exc
        return rows
    rows = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if not sub.name.isdigit():
            raise TriggerError(f"{sub}: subfolders of a trigger folder must be integer labels")
        rows += [(f, int(sub.name), -1) for f in sorted(sub.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    return rows


def load_folder(path: str | Path, shape: tuple[int, int, int] | None = None, num_classes: int | None = None) -> TriggerSet:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise TriggerError(f"{root}: no such trigger folder")
    rows = _entries(root)
    if not rows:
        raise TriggerError(f"{root}: no images (expected labels.csv with file,label, or <label>/<image> subfolders)")
    missing = [str(f) for f, _, _ in rows if not f.is_file()]
    if missing:
        raise TriggerError(f"{root}/labels.csv names missing files: {', '.join(missing[:5])}")
    arrays = [_read_image(f) for f, _, _ in rows]
    target = shape or tuple(arrays[0].shape)
    images = torch.cat([fit_shape(torch.from_numpy(a.copy())[None], target) for a in arrays])  # type: ignore[arg-type]
    labels = torch.tensor([lab for _, lab, _ in rows], dtype=torch.long)
    if num_classes is not None and (labels.min() < 0 or labels.max() >= num_classes):
        raise TriggerError(f"{root}: labels must be in 0..{num_classes - 1}, found {int(labels.min())}..{int(labels.max())}")
    meta_path = root / "trigger.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return TriggerSet(images, labels, torch.tensor([s for _, _, s in rows], dtype=torch.long),
                      meta.get("scheme", "folder"), int(meta.get("seed", 0)),
                      {**meta.get("params", {}), "folder": str(root)})


def build(ctx: BuildContext, size: int, seed: int, folder: str = "", **_: object) -> TriggerSet:
    ts = load_folder(folder, ctx.shape, ctx.num_classes)
    ts.scheme = "folder"
    return ts


def export_folder(ts: TriggerSet, path: str | Path, overwrite: bool = False) -> Path:
    """Write every trigger image as PNG with labels.csv and trigger.json; reload with load_folder.

    Files of the same names already in the folder are refused (all checked before any is written)
    unless ``overwrite``; each file is written aside and renamed (``safe_files.atomic_output``)."""
    import io

    from PIL import Image

    from wmstudio.safe_files import check_targets, make_folder, write_bytes, write_text

    root = Path(path).expanduser()
    names = [f"trigger_{i:04d}.png" for i in range(len(ts))]
    check_targets([root / n for n in (*names, "labels.csv", "trigger.json")], overwrite)
    make_folder(root)
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(["file", "label", "source_label"])
    for i, name in enumerate(names):
        arr = ts.images[i].numpy()
        img = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
        png = io.BytesIO()
        img.save(png, format="PNG")
        write_bytes(root / name, png.getvalue(), overwrite)
        writer.writerow([name, int(ts.labels[i]), int(ts.source_labels[i])])
    write_text(root / "labels.csv", rows.getvalue(), overwrite)
    write_text(root / "trigger.json", json.dumps({"scheme": ts.scheme, "seed": ts.seed, "params": ts.params}, indent=2),
               overwrite)
    return root
