"""Verification that bias cannot pass: the suspect's trigger answers are tested against its own control
(paired McNemar on control images, else Fisher against its clean rate for the trigger labels)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import quick_config
from wmstudio.config_io import config_from_json, load_config
from wmstudio.metrics.verification import fisher_p_value, mcnemar_p_value


def test_the_exact_tests_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n, m, big_m in [(26, 100, 250, 900), (90, 100, 30, 900), (0, 10, 5, 50), (10, 10, 0, 5), (3, 10, 40, 100)]:
        want = stats.fisher_exact([[k, n - k], [m, big_m - m]], alternative="greater").pvalue
        assert fisher_p_value(k, n, m, big_m) == pytest.approx(want, rel=1e-9, abs=1e-12)
    for b, c in [(12, 11), (30, 2), (0, 5), (7, 0)]:
        assert mcnemar_p_value(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    assert mcnemar_p_value(0, 0) == 1.0


@pytest.fixture(scope="module")
def wm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A watermarked digits run: content triggers (a stamp on images of other classes) labelled class 0."""
    from wmstudio.pipeline import run_experiment

    log = tmp_path_factory.mktemp("control") / "run.h5"
    cfg = load_config(data=quick_config(model={"options": {"width": 8}}, trigger={"scheme": "content", "size": 100},
                                        embed={"epochs": 8}))
    run_experiment(cfg, log, stages=["embed"])
    return log


def train_biased(log: Path, out: Path, share: float = 0.3, target: int = 0, epochs: int = 15, seed: int = 0) -> Path:
    """An independent model: trained on the attacker's split of the data (disjoint from the owner's, whose
    images the triggers are made from) with ``share`` of its images relabelled to ``target``. It leans
    towards the target class for every input and never saw a trigger."""
    from wmstudio.data import load_dataset
    from wmstudio.data.batches import Normalizer
    from wmstudio.model_build import build_from_config
    from wmstudio.runlog_reader import RunLogReader

    r = RunLogReader(log)
    cfg, info = config_from_json(r.config_json), r.data_info()
    norm = Normalizer(tuple(info["mean"]), tuple(info["std"]))
    owner = load_dataset("digits").train.subset(torch.from_numpy(r.splits()["attacker"]), "attacker")
    gen = torch.Generator().manual_seed(seed)
    labels = owner.labels.clone()
    labels[torch.rand(len(labels), generator=gen) < share] = target
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: more threads only contend (20x slower on a busy 2-core machine)
    model = build_from_config(cfg, 1, 10, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=gen)
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            opt.zero_grad()
            F.cross_entropy(model(norm(owner.images[idx])), labels[idx]).backward()
            opt.step()
    torch.set_num_threads(threads)
    torch.save(model.state_dict(), out)
    return out


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trigger set of owner images under a faint fixed noise pattern (std 0.05), labelled class 0: the
    triggers stay in the data's distribution, so a model's lean towards class 0 shows on them as on
    clean images. (A large stamp on 8x8 digits is itself off-distribution and draws a biased model's
    answers to its favourite class: docs/verification_fpr.md.)"""
    from wmstudio.pipeline import run_experiment

    log = tmp_path_factory.mktemp("noise") / "run.h5"
    cfg = load_config(data=quick_config(run={"threads": 1}, data={"attacker_fraction": 0.5},
                                        model={"options": {"width": 8}},
                                        trigger={"scheme": "noise", "size": 100, "noise_std": 0.05}, embed={"epochs": 8}))
    run_experiment(cfg, log, stages=["embed"])
    return log


@pytest.fixture(scope="module")
def biased(noise_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first of a few such models whose lean shows as a trigger accuracy the chance test alone calls
    "present" and that is not collapsed (the case the control test exists for). Which seed gives one depends
    on the processor's arithmetic: on one machine seed 1 gave class 0 to 56% of the test images (collapsed,
    unverifiable), on another 45%."""
    from wmstudio.verify import verify

    folder, seen = tmp_path_factory.mktemp("biased"), []
    for seed in (1, 2, 3, 4):
        path = train_biased(noise_run, folder / f"biased{seed}.pt", share=0.3, seed=seed)
        v = verify(str(path), str(noise_run))
        if v.chance_verified and not v.unverifiable:
            return path
        seen.append(f"seed {seed}: trigger acc {v.trigger_acc:.2f}, control {v.control_rate}, {v.unverifiable or 'kept'}")
    pytest.fail("no biased model both leans far enough to pass the chance test and is not collapsed: " + "; ".join(seen))


def test_a_model_biased_to_the_target_class_is_not_shown(noise_run, biased, capsys) -> None:
    """The issue's false positive: the chance binomial alone says "present"; the control test does not."""
    from wmstudio.cli import main
    from wmstudio.verify import verify

    suspect = biased
    v = verify(str(suspect), str(noise_run))
    assert v.chance_verified, v.text()  # the trigger accuracy is far above chance (1/10) ...
    assert v.control_rate is not None and v.control_rate > 0.15  # ... because the model leans to class 0 anyway
    assert not v.control_verified and not v.verified and not v.unverifiable, v.text()
    assert "control" in v.failed_tests()
    assert main(["verify", "-m", str(suspect), "-t", str(noise_run)]) == 0
    out = capsys.readouterr().out
    assert "decision     not shown" in out and "the control test did not reject" in out and "PRESENT" not in out
    assert "control p    " in out and "effect       " in out


def test_the_watermarked_model_is_present_under_every_test(wm_run) -> None:
    from wmstudio.verify import verify

    v = verify(f"{wm_run}:embed", str(wm_run))
    assert v.verified and v.chance_verified and v.control_verified and v.control_rate is not None
    assert v.trigger_acc - v.control_rate > 0.5 and "WATERMARK PRESENT" in v.text()


def _with_controls(monkeypatch: pytest.MonkeyPatch, make: object, kind: str) -> None:
    """The trigger log's TriggerSet gains control images (the engine fills them in newer logs)."""
    from wmstudio.runlog_reader import RunLogReader

    real = RunLogReader.trigger_set

    def trigger_set(self):  # noqa: ANN202
        ts = real(self)
        ts.control_images, ts.control_kind = make(self, ts), kind
        return ts

    monkeypatch.setattr(RunLogReader, "trigger_set", trigger_set)


def _clean_other_class(reader, ts) -> torch.Tensor:  # noqa: ANN001
    """Matched controls: owner images whose true class differs from each trigger's label."""
    from wmstudio.data import load_dataset

    owner = load_dataset("digits").train.subset(torch.from_numpy(reader.splits()["owner"]), "owner")
    pool = owner.images[owner.labels != int(ts.labels[0])]
    return pool[:len(ts)].clone()


def test_paired_controls_use_mcnemar(wm_run, noise_run, biased, monkeypatch) -> None:
    from wmstudio.verify import verify

    _with_controls(monkeypatch, _clean_other_class, "matched")
    v = verify(f"{wm_run}:embed", str(wm_run))
    assert "McNemar" in v.control_test and v.control_n == 100 and v.verified, v.text()
    assert "matched clean images" in v.control
    b = verify(str(biased), str(noise_run))
    assert "McNemar" in b.control_test and not b.verified, b.text()


def test_a_stamp_that_does_nothing_is_not_shown(wm_run, monkeypatch) -> None:
    """Paired controls equal to the triggers (the trigger changes nothing): no discordant pair, p = 1,
    whatever the trigger accuracy; the chance test alone would say "present"."""
    from wmstudio.verify import verify

    _with_controls(monkeypatch, lambda _r, ts: ts.images.clone(), "paired")
    v = verify(f"{wm_run}:embed", str(wm_run))
    assert v.chance_verified and v.control_p_value == 1.0 and not v.verified
    assert "the same source images without the trigger (paired)" in v.text()
    assert "0 pairs only the trigger matched, 0 only the control" in v.text()
