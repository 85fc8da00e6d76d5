"""data.normalize: presets, custom values, declared normalisation, and that every reader uses what a run recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import quick_config
from wmstudio.assembly import load_split
from wmstudio.config_io import load_config
from wmstudio.data import load_dataset
from wmstudio.data.normalization import PRESETS, choose_normalizer
from wmstudio.errors import CheckpointError, ConfigError
from wmstudio.landscape import LandscapeSpec, compute_landscape
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment
from wmstudio.runlog_reader import RunLogReader

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _tiny(**sections: dict) -> dict:
    """One short embed epoch on digits, small trigger set, no attack or restoration unless asked."""
    base = quick_config(model={"options": {"width": 8}}, trigger={"scheme": "content", "size": 20},
                        embed={"epochs": 1}, finetune={"enabled": False}, restore={"enabled": False})
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


def _manual_loss(state: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                 mean: list[float], std: list[float], channels: int = 3) -> float:
    """Cross-entropy of the weights on images normalised by hand: (x / 255 - mean) / std."""
    model = build_model("small_cnn", channels, 10, images.shape[-1], {"width": 8})
    model.load_state_dict(state)
    model.eval()
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        return float(F.cross_entropy(model((images.float() / 255.0 - m) / s), labels))


def test_custom_mean_std_are_checked_and_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^data\.mean: .*custom"):
        load_config(data={"data": {"normalize": "custom"}})
    with pytest.raises(ConfigError, match=r"^data\.std: 2 values but data\.mean has 3"):
        load_config(data={"data": {"normalize": "custom", "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2]}})
    with pytest.raises(ConfigError, match=r"^data\.std: every value must be > 0"):
        load_config(data={"data": {"normalize": "custom", "mean": [0.5], "std": [0.0]}})
    with pytest.raises(ConfigError, match=r"^data\.mean: expected numbers, got 'x'"):
        load_config(data={"data": {"normalize": "custom", "mean": ["x"], "std": [0.2]}})
    with pytest.raises(ConfigError, match=r"^data\.mean: only used with data\.normalize = \"custom\""):
        load_config(data={"data": {"normalize": "imagenet", "mean": [0.5]}})
    with pytest.raises(ConfigError, match=r"^data\.normalize: expected one of auto, fit"):
        load_config(data={"data": {"normalize": "imgnet"}})
    # the app's form hands list elements over as text
    cfg = load_config(data={"data": {"normalize": "custom", "mean": ["0.5"], "std": ["0.25"]}})
    assert cfg.data.mean == [0.5] and cfg.data.std == [0.25]


def test_channel_counts_are_checked_against_the_images() -> None:
    grey = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ConfigError, match=r"^data\.normalize: imagenet has 3 .* 1 channel.*data\.channels = 3"):
        choose_normalizer("imagenet", grey)
    with pytest.raises(ConfigError, match=r"^data\.mean: data\.mean has 2 channel value"):
        choose_normalizer("custom", grey, mean=[0.1, 0.2], std=[0.3, 0.3])
    norm, mode, _ = choose_normalizer("cifar10", grey.expand(-1, 3, -1, -1))
    assert (norm.mean, norm.std, mode) == (*PRESETS["cifar10"], "cifar10")


def test_image_size_and_channels_apply_to_the_builtin_digits() -> None:
    pair = load_dataset("digits", image_size=16, channels=3)
    assert pair.shape == (3, 16, 16) and pair.train.images.dtype == torch.uint8
    plain = load_dataset("digits")
    assert torch.equal(pair.test.images[:, 0], pair.test.images[:, 2])  # grey repeated
    assert float(pair.test.images.float().mean()) == pytest.approx(float(plain.test.images.float().mean()), rel=0.05)
    assert torch.equal(pair.test.labels, plain.test.labels)


def test_imagenet_run_records_the_constants_and_every_reader_uses_them(tmp_path: Path) -> None:
    cfg = load_config(data=_tiny(data={"normalize": "imagenet", "channels": 3},
                                 extract={"enabled": True, "epochs": 1}))
    out = tmp_path / "imagenet.h5"
    assert run_experiment(cfg, out).status == "finished"
    r = RunLogReader(out)
    info = r.data_info()
    assert info["mean"] == pytest.approx(IMAGENET_MEAN) and info["std"] == pytest.approx(IMAGENET_STD)
    assert info["normalize"] == "imagenet" and info["normalize_source"] == ""
    test = load_dataset("digits", channels=3).test.subset(r.splits()["test"])
    # training, extraction: their recorded test loss is the loss under a hand-made ImageNet normalisation
    for stage in ("embed", "extract"):
        manual = _manual_loss(r.weights(stage), test.images, test.labels, IMAGENET_MEAN, IMAGENET_STD)
        assert r.stage(stage).final("test_loss") == pytest.approx(manual, rel=1e-4)
    imagenet = _manual_loss(r.weights("embed"), test.images, test.labels, IMAGENET_MEAN, IMAGENET_STD)
    fit = choose_normalizer("fit", test.images)[0]
    assert _manual_loss(r.weights("embed"), test.images, test.labels, list(fit.mean), list(fit.std)) \
        != pytest.approx(imagenet, rel=1e-3)  # the check above can tell the two normalisations apart
    # the landscape, rebuilt from the log alone, evaluates under the same constants
    line = compute_landscape(out, LandscapeSpec(kind="line", models=["embed", "extract"], resolution=2,
                                                margin=0.0, images=0, batch_size=512))
    k = int(torch.tensor(line.axes["t"]).sub(float(line.model_coords[0])).abs().argmin())
    assert line.metrics["test_loss"][k] == pytest.approx(
        _manual_loss(r.weights("embed"), test.images, test.labels, IMAGENET_MEAN, IMAGENET_STD), rel=1e-4)
    # an exported model declares the run's normalisation, in either format, and a later run picks it up
    from wmstudio.export_model import export_model
    from wmstudio.models.declared import declared_normalization

    for suffix in (".pt", ".safetensors"):
        exported = tmp_path / f"exported{suffix}"
        export_model(f"{out}:embed", exported)
        declared = declared_normalization(str(exported))
        assert declared is not None and declared.mean == pytest.approx(IMAGENET_MEAN)
        assert declared.std == pytest.approx(IMAGENET_STD)
    cfg2 = load_config(data=_tiny(data={"channels": 3}, model={"checkpoint": str(exported)}))
    again = load_split(cfg2).normalizer
    assert again.mode == "declared" and again.mean == pytest.approx(IMAGENET_MEAN)


def _declaring_checkpoint(path: Path, mean: list[float], std: list[float]) -> Path:
    model = build_model("small_cnn", 1, 10, 8, {"width": 8})
    torch.save({"state_dict": model.state_dict(), "normalization": {"mean": mean, "std": std}}, path)
    return path


def test_checkpoint_declared_normalisation_is_used_unless_the_config_says_otherwise(tmp_path: Path) -> None:
    ckpt = _declaring_checkpoint(tmp_path / "declared.pt", [0.25], [0.5])
    cfg = load_config(data=_tiny(model={"checkpoint": str(ckpt)}))
    norm = load_split(cfg).normalizer
    assert (norm.mean, norm.std, norm.mode) == ((0.25,), (0.5,), "declared")
    assert norm.source == f"checkpoint {ckpt}"
    cfg_fit = load_config(data=_tiny(model={"checkpoint": str(ckpt)}, data={"normalize": "fit"}))
    fitted = load_split(cfg_fit).normalizer
    assert fitted.mode == "fit" and fitted.mean != (0.25,)
    # the run records where it came from
    out = tmp_path / "declared.h5"
    run_experiment(load_config(data=_tiny(model={"checkpoint": str(ckpt)}, embed={"epochs": 0})), out)
    info = RunLogReader(out).data_info()
    assert (info["mean"], info["std"], info["normalize"]) == ([0.25], [0.5], "declared")
    assert info["normalize_source"] == f"checkpoint {ckpt}"


def test_safetensors_metadata_and_model_file_declare_normalisation(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = build_model("small_cnn", 1, 10, 8, {"width": 8})
    st = tmp_path / "m.safetensors"
    save_file(dict(model.state_dict()), str(st), metadata={"wmstudio.mean": "[0.1]", "wmstudio.std": "[0.2]"})
    norm = load_split(load_config(data=_tiny(model={"checkpoint": str(st)}))).normalizer
    assert (norm.mean, norm.std, norm.source) == ((0.1,), (0.2,), f"checkpoint {st}")
    user = tmp_path / "net.py"
    user.write_text("from wmstudio.models.small_cnn import SmallCNN\n"
                    "NORMALIZATION = {'mean': [0.3], 'std': [0.4]}\n"
                    "def make(in_channels, num_classes):\n    return SmallCNN(in_channels, num_classes, 8)\n")
    cfg = load_config(data=_tiny(model={"file": str(user), "factory": "make"}))
    norm = load_split(cfg).normalizer
    assert (norm.mean, norm.std, norm.source) == ((0.3,), (0.4,), f"model file {user}")
    # a checkpoint's declaration wins over the model file's
    ckpt = _declaring_checkpoint(tmp_path / "c.pt", [0.6], [0.7])
    cfg = load_config(data=_tiny(model={"file": str(user), "factory": "make", "checkpoint": str(ckpt)}))
    assert load_split(cfg).normalizer.mean == (0.6,)


def test_bad_declarations_name_the_file(tmp_path: Path) -> None:
    ckpt = _declaring_checkpoint(tmp_path / "bad.pt", [0.5, 0.5], [0.2])
    with pytest.raises(CheckpointError, match=r"bad\.pt: its declared normalisation needs one mean and one std"):
        load_split(load_config(data=_tiny(model={"checkpoint": str(ckpt)})))
    rgb = _declaring_checkpoint(tmp_path / "rgb.pt", IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ConfigError, match=r"^data\.normalize: the normalisation declared by the checkpoint .*rgb\.pt "
                                          r"has 3 channel value\(s\) but the images have 1"):
        load_split(load_config(data=_tiny(model={"checkpoint": str(rgb)})))
    user = tmp_path / "net.py"
    user.write_text("NORMALIZATION = {'mean': MEAN}\n")
    with pytest.raises(ConfigError, match=r"^model\.file: .*net\.py: NORMALIZATION must be a literal"):
        load_split(load_config(data=_tiny(model={"file": str(user), "factory": "make"})))
