"""Measured false-positive rate of ``wmstudio verify``'s decision rules on the digits data set.

    PYTHONPATH=. python benchmarks/verification_fpr.py [--out DIR] [--fpr 0.05]

For each of two trigger sets (content: a stamp on images of other classes; noise: a faint fixed noise
pattern, std 0.05), all labelled class 0, one watermarked model is embedded, then >= 20 models that
never saw the triggers are verified against its trigger set:

- independent: trained on the attacker's split (disjoint from the owner's) with other seeds;
- biased: the same, with 30% of the training images relabelled to the target class (class 0);
- distilled: students of the watermarked model, trained on the attacker's split to match its
  outputs (no trigger image);

and K = 20 null models (independent, further seeds) form the null distribution of ``--null``. The
table counts, per category, how many models each rule declares "present" at the false-positive
rate: the chance binomial alone, + the control test (McNemar on control images where the trigger
set has them, else Fisher against the model's clean rate for the trigger labels), + the null models.
Models reported "cannot be verified" count as not present under the two new rules; the chance
column is the binomial alone, as ``wmstudio verify`` decided before these checks. Prints a Markdown table; a few minutes
on one CPU core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmstudio.config_io import config_from_json, load_config  # noqa: E402
from wmstudio.data import load_dataset  # noqa: E402
from wmstudio.data.batches import Normalizer  # noqa: E402
from wmstudio.model_build import build_from_config  # noqa: E402
from wmstudio.null_models import NullDistribution  # noqa: E402
from wmstudio.pipeline import run_experiment  # noqa: E402
from wmstudio.runlog_reader import RunLogReader  # noqa: E402
from wmstudio.verify import Verification, add_null, verify  # noqa: E402

TRIGGERS = {"content": {"scheme": "content", "size": 100},
            "noise 0.05": {"scheme": "noise", "size": 100, "noise_std": 0.05}}
COUNTS = {"independent": 8, "biased": 8, "distilled": 6}  # 22 non-watermarked models per trigger set
NULLS = 20


def _config(trigger: dict) -> dict:
    return {"run": {"threads": 1, "seed": 0}, "data": {"dataset": "digits", "flip": False, "attacker_fraction": 0.5},
            "model": {"arch": "small_cnn", "options": {"width": 8}}, "trigger": trigger, "embed": {"epochs": 8}}


def _data(log: Path) -> tuple[object, torch.Tensor, torch.Tensor, Normalizer]:
    r = RunLogReader(log)
    info = r.data_info()
    attacker = load_dataset("digits").train.subset(torch.from_numpy(r.splits()["attacker"]), "attacker")
    return config_from_json(r.config_json), attacker.images, attacker.labels, Normalizer(tuple(info["mean"]),
                                                                                          tuple(info["std"]))


def train(log: Path, seed: int, share: float = 0.0, teacher: torch.nn.Module | None = None,
          epochs: int = 15) -> dict[str, torch.Tensor]:
    """A model on the attacker's split: plain, biased (``share`` relabelled to class 0) or distilled."""
    cfg, images, labels, norm = _data(log)
    gen = torch.Generator().manual_seed(seed)
    labels = labels.clone()
    if share:
        labels[torch.rand(len(labels), generator=gen) < share] = 0
    torch.manual_seed(seed)
    model = build_from_config(cfg, 1, 10, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    soft = None
    if teacher is not None:
        with torch.no_grad():
            soft = F.softmax(teacher.eval()(norm(images)) / 2.0, dim=1)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=gen)
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            opt.zero_grad()
            out = model(norm(images[idx]))
            loss = (F.kl_div(F.log_softmax(out / 2.0, 1), soft[idx], reduction="batchmean") if soft is not None
                    else F.cross_entropy(out, labels[idx]))
            loss.backward()
            opt.step()
    return model.state_dict()


def rules(v: Verification) -> dict[str, bool]:
    """The chance binomial alone (the decision of wmstudio verify before the control test and the
    cannot-be-verified checks), then the present decision with the control test, and with the nulls."""
    ok = not v.unverifiable
    return {"chance": v.chance_verified,
            "chance + control": ok and v.chance_verified and v.control_verified,
            "chance + control + null": ok and v.chance_verified and v.control_verified and bool(v.null_verified)}


def measure(name: str, trigger: dict, root: Path, fpr: float) -> list[str]:
    log = root / f"{name.split()[0]}.h5"
    run_experiment(load_config(data=_config(trigger)), log, stages=["embed"], overwrite=True)
    cfg = config_from_json(RunLogReader(log).config_json)
    teacher = build_from_config(cfg, 1, 10, 8)
    teacher.load_state_dict(RunLogReader(log).weights("embed"))

    def check(state: dict[str, torch.Tensor], tag: str, null: Path | None) -> Verification:
        path = root / f"{tag}.pt"
        torch.save(state, path)
        v = verify(str(path), str(log), fpr)
        if null is not None:
            add_null(v, str(null))
        return v

    nulls = [check(train(log, 1000 + i), f"null{i}", None) for i in range(NULLS)]
    null = root / "null.h5"
    NullDistribution(np.array([v.trigger_acc for v in nulls]), np.array([v.correct for v in nulls]), nulls[0].n, 10,
                     str(log), "independent models on the attacker's split").save(null, overwrite=True)
    rows = []
    wm = verify(f"{log}:embed", str(log), fpr)
    add_null(wm, str(null))
    seeds = iter(range(1, 1000))
    for cat, count in COUNTS.items():
        vs = []
        for _ in range(count):
            seed = next(seeds)
            state = train(log, seed, share=0.3 if cat == "biased" else 0.0, teacher=teacher if cat == "distilled" else None)
            vs.append(check(state, f"{cat}{seed}", null))
        positives = {r: sum(rules(v)[r] for v in vs) for r in rules(vs[0])}
        acc = np.mean([v.trigger_acc for v in vs])
        ctrl = np.mean([v.control_rate or 0.0 for v in vs])
        rows.append(f"| {name} | {cat} | {count} | {acc:.2f} / {ctrl:.2f} | "
                    + " | ".join(f"{positives[r]}/{count}" for r in positives)
                    + f" | {sum(bool(v.unverifiable) for v in vs)} |")
    total = sum(COUNTS.values())
    rows.append(f"| {name} | watermarked model (power) | 1 | {wm.trigger_acc:.2f} / {wm.control_rate or 0:.2f} | "
                + " | ".join("present" if x else "not shown" for x in rules(wm).values())
                + f" | {wm.unverifiable[:60] or 'no'} |")
    print(f"{name}: {total} non-watermarked models, {NULLS} null models", file=sys.stderr)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="where the logs and models go (default: a temporary folder)")
    p.add_argument("--fpr", type=float, default=0.05)
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        root.mkdir(parents=True, exist_ok=True)
        rows = [row for name, trig in TRIGGERS.items() for row in measure(name, trig, root, args.fpr)]
    print(f"False-positive rate at {args.fpr:g}: models declared present (K = {NULLS} null models)\n")
    print("| trigger set | suspects | n | trigger acc / control rate (mean) | chance | chance + control | "
          "chance + control + null | cannot be verified |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
