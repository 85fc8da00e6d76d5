"""Fuzz worker: loads byte-flipped copies of a file, one case after another, reporting each outcome.

Run by ``test_fuzz.py`` in a subprocess, so that a crash (segfault) or a hang in a native reader
ends only this process and names the case it was on. Usage::

    python fuzz_worker.py KIND BASE_FILE WORKDIR SEED START COUNT

KIND is ``pt``, ``safetensors`` or ``runlog`` (BASE_FILE byte-flipped), ``export`` (an exported
``.safetensors`` with its ``wmstudio`` metadata: the metadata text mutated, read as ``verify`` reads a
suspect's file), ``nullmodels`` (a ``wmstudio null-models`` file, byte-flipped) or ``sweep`` (BASE_FILE
is a sweep folder: one of its JSON files mutated, then reported). Each case writes one line of JSON
before it starts (``{"case": i, "start": true}``) and one with its outcome: ``ok``, or the exception's
type with ``clear`` true for a ``WmStudioError``. A case taking longer than CASE_SECONDS is reported as
a hang. The last line gives the process's peak memory (``{"peak_rss_mb": ...}``).
"""

from __future__ import annotations

import json
import random
import signal
import sys
import traceback
import warnings
from pathlib import Path

CASE_SECONDS = 20


class Hang(Exception):
    pass


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded corruption: flipped bits, overwritten or zeroed runs, truncation or a cut-out,
    half of them near the start or the end of the file (headers, zip directory, HDF5 superblock)."""
    b = bytearray(data)
    n = len(b)

    def pos() -> int:
        if rng.random() < 0.5:
            edge = min(n, 4096)
            return rng.randrange(edge) if rng.random() < 0.5 else n - 1 - rng.randrange(edge)
        return rng.randrange(n)

    op = rng.choice(("bits", "bits", "bytes", "run", "zero", "truncate", "cut"))
    if op == "bits":
        for _ in range(rng.randint(1, 8)):
            b[pos()] ^= 1 << rng.randrange(8)
    elif op == "bytes":
        for _ in range(rng.randint(1, 16)):
            b[pos()] = rng.randrange(256)
    elif op in ("run", "zero"):
        start, length = pos(), rng.randint(2, 256)
        fill = bytes(rng.randrange(256) for _ in range(length)) if op == "run" else bytes(length)
        b[start:start + length] = fill[:max(0, n - start)]
    elif op == "truncate":
        del b[pos():]
    else:
        start = pos()
        del b[start:start + rng.randint(1, 512)]
    return bytes(b)


def _model():  # noqa: ANN202 - the small_cnn the base files were saved from
    from wmstudio.models import build_model

    return build_model("small_cnn", 1, 10, 8, {"width": 4})


def load_checkpoint_file(path: Path) -> None:
    from wmstudio.models import load_checkpoint

    load_checkpoint(_model(), path, strict=True)


def load_run_log(path: Path) -> None:
    """Everything a user does with a log: inspect it, read each stage, its weights, trajectory,
    the split and trigger set, and start a model from it."""
    from wmstudio.inspect_log import summarize
    from wmstudio.models import load_checkpoint
    from wmstudio.runlog_reader import RunLogReader

    summarize(str(path))
    r = RunLogReader(path)
    for st in r.stages():
        if st.has_weights:
            r.weights(st.name)
        r.trajectory(st.name)
    r.splits()
    r.data_info()
    r.trigger_set()
    load_checkpoint(_model(), f"{path}:embed", strict=True)


def load_export(path: Path) -> None:
    """A suspect's exported file as ``wmstudio verify`` reads it: the checkpoint, its metadata, the model."""
    from wmstudio.export_model import build_from_metadata
    from wmstudio.models.checkpoint import read_checkpoint
    from wmstudio.models.code_trust import CodeOrigin

    ckpt = read_checkpoint(path)
    if ckpt.info:
        build_from_metadata(ckpt.info, CodeOrigin("export metadata", str(path), False, "rerun with --trust"))


def load_null_models(path: Path) -> None:
    from wmstudio.null_models import NullDistribution

    NullDistribution.load(path)


def report_sweep(folder: Path) -> None:
    from wmstudio.sweep.report_write import write_report

    write_report(folder, overwrite=True)


def _mutated_export(data: bytes, rng: random.Random, path: Path) -> None:
    """The export's tensors kept, its ``wmstudio`` metadata text mutated (byte flips of the JSON)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    base = path.with_name("export_base.safetensors")
    if not base.exists():
        base.write_bytes(data)
    with safe_open(str(base), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has keys()
        meta = dict(fh.metadata() or {})
    text = mutate(meta.get("wmstudio", "{}").encode(), rng).decode("utf-8", errors="replace")
    save_file({k: torch.as_tensor(v) for k, v in tensors.items()}, str(path), metadata={"wmstudio": text})


def _mutated_sweep(base: Path, rng: random.Random, work: Path) -> Path:
    import shutil

    folder = work / "sweep_case"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(base, folder)
    files = sorted(folder.rglob("*.json"))
    victim = rng.choice(files)
    victim.write_bytes(mutate(victim.read_bytes(), rng))
    return folder


def main(argv: list[str]) -> int:
    kind, base, workdir, seed, start, count = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3]), int(argv[4]), \
        int(argv[5])
    from wmstudio.errors import WmStudioError

    warnings.simplefilter("ignore")
    data = base.read_bytes() if base.is_file() else b""
    loader = {"runlog": load_run_log, "export": load_export, "nullmodels": load_null_models,
              "sweep": report_sweep}.get(kind, load_checkpoint_file)

    def on_alarm(_sig: int, _frame: object) -> None:
        raise Hang(f"no result within {CASE_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    for i in range(start, start + count):
        rng = random.Random(f"{seed}:{kind}:{i}")
        path = workdir / f"case{base.suffix}"
        if kind == "sweep":
            path = _mutated_sweep(base, rng, workdir)
        elif kind == "export":
            _mutated_export(data, rng, path)
        else:
            path.write_bytes(mutate(data, rng))
        print(json.dumps({"case": i, "start": True}), flush=True)
        signal.alarm(CASE_SECONDS)
        try:
            loader(path)
            result = {"case": i, "outcome": "ok", "clear": True}
        except Hang as exc:
            result = {"case": i, "outcome": "hang", "clear": False, "message": str(exc)}
        except WmStudioError as exc:
            result = {"case": i, "outcome": type(exc).__name__, "clear": True, "message": str(exc)[:300]}
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzz test looks for
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in frames if "wmstudio" in Path(f.filename).parts] or frames
            where = f"{'/'.join(Path(ours[-1].filename).parts[-2:])}:{ours[-1].lineno}"
            result = {"case": i, "outcome": type(exc).__name__, "clear": False, "message": str(exc)[:300],
                      "where": where}
        finally:
            signal.alarm(0)
        print(json.dumps(result), flush=True)
    import resource

    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
