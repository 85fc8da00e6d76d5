"""The base models shipped in resources/base_models are what their cards say: the files match their
hashes, load strictly into the named architecture, and score the card's test accuracy on CIFAR-10."""

from __future__ import annotations

import pytest
import torch
from conftest import CIFAR

from wmstudio import base_models
from wmstudio.config_io import load_config
from wmstudio.models import build_model, load_state_dict_file

SHIPPED = base_models.available()


def test_the_comparison_base_is_shipped_with_its_split_and_accuracy() -> None:
    assert "cifar10_fastcnn" in SHIPPED
    card = base_models.card("cifar10_fastcnn")
    # 0.879: 0.1 point below the 88% target of issue 23 (docs/base_model.md); above the 85% an embedding must keep
    assert card["test_acc"] > 0.85 and card["split"]["test"] == 10_000 and card["split"]["attacker"] == 15_000


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_base_matches_its_card_and_loads(name: str) -> None:
    card = base_models.card(name)
    path = base_models.resolve(f"{base_models.PREFIX}{name}")  # checks the SHA-256
    assert base_models.tensors_hash(path) == card["tensors_sha256"]
    model = build_model(card["architecture"], 3, 10, 32, card["options"], "", "")
    model.load_state_dict(load_state_dict_file(path), strict=True)
    recipe = load_config(base_models.folder() / card["recipe"])
    assert recipe.model.arch == card["architecture"] and recipe.embed.clean_epochs == card["epochs"]


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR.is_file(), reason=f"CIFAR-10 archive not found at {CIFAR} (see shared/data/README.md)")
def test_the_comparison_base_scores_its_card_accuracy_on_the_test_split() -> None:
    import torch

    from wmstudio.data import load_dataset
    from wmstudio.data.batches import Normalizer
    from wmstudio.metrics import evaluate

    card = base_models.card("cifar10_fastcnn")
    model = build_model("fastcnn", 3, 10, 32, {}, "", "")
    model.load_state_dict(load_state_dict_file(base_models.resolve("base:cifar10_fastcnn")))
    test = load_dataset("imagefolder", CIFAR).test
    norm = card["dataset"]["normalization"]
    torch.set_num_threads(2)
    _, acc = evaluate(model, test.images, test.labels, Normalizer(tuple(norm["mean"]), tuple(norm["std"])), 1000)
    assert acc == pytest.approx(card["test_acc"], abs=0.002)  # fp32 evaluation, any thread count


@pytest.mark.parametrize(("name", "runs", "embeds"), [("comparison_cifar10_persistence", 45, 9),
                                                      ("comparison_cifar10_restoration", 15, 3),
                                                      ("comparison_cifar10_pilot", 12, 4)])
def test_the_comparison_sweeps_expand_on_the_shipped_base(name: str, runs: int, embeds: int) -> None:
    from wmstudio.resources import example_config
    from wmstudio.sweep import load_sweep

    spec = load_sweep(example_config(name))
    assert len(spec.runs) == runs and len(spec.embed_groups()) == embeds
    first = spec.runs[0].config
    assert first["model"]["checkpoint"] == "base:cifar10_fastcnn" and first["trigger"]["label_mode"] == "random"


def test_the_comparison_sweeps_share_their_watermarked_models() -> None:
    """The pilot's seed-0 models are the persistence sweep's, and its plain models the restoration sweep's
    (same embed config, same embed id): their logs are copied between the folders instead of trained again
    (docs/attacks_cifar10.md)."""
    from wmstudio.resources import example_config
    from wmstudio.sweep import load_sweep

    def ids(name: str) -> dict[tuple, str]:
        return {tuple(sorted(r.embed_values.items())): r.embed_id for r in load_sweep(example_config(name)).runs}

    pilot, persistence, restoration = ids("comparison_cifar10_pilot"), ids("comparison_cifar10_persistence"), \
        ids("comparison_cifar10_restoration")
    shared = {k: v for k, v in pilot.items() if k in persistence}
    assert len(shared) == 3 and all(persistence[k] == v for k, v in shared.items())
    plain = {dict(k)["seed"]: v for k, v in persistence.items() if dict(k)["embed.method"] == "plain"}
    assert {dict(k)["seed"]: v for k, v in restoration.items()} == plain


def test_app_embeds_from_the_shipped_base_its_batchnorm_pair_filled_from_the_plain_one() -> None:
    """APP's model has a clean and a trigger BatchNorm where the base has one: both start from the base's
    (a strict load, nothing missing or left over), and the clean route computes what the base does."""
    from wmstudio.methods.dual_bn import bn_route, to_dual_bn
    from wmstudio.models.checkpoint import load_checkpoint
    from wmstudio.models.fit import compare

    path = base_models.resolve("base:cifar10_fastcnn")
    tensors = load_state_dict_file(path)
    plain = build_model("fastcnn", 3, 10, 32, {}, "", "")
    plain.load_state_dict(tensors)
    dual = to_dual_bn(build_model("fastcnn", 3, 10, 32, {}, "", ""))
    assert compare(dual, tensors).clean
    assert load_checkpoint(dual, path, strict=True) == []
    state = dual.state_dict()
    bns = [k[: -len(".bn_clean.running_var")] for k in state if k.endswith(".bn_clean.running_var")]
    assert bns
    for bn in bns:
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(state[f"{bn}.bn_clean.{leaf}"], tensors[f"{bn}.{leaf}"])
            assert torch.equal(state[f"{bn}.bn_trigger.{leaf}"], tensors[f"{bn}.{leaf}"])
    x = torch.randn(4, 3, 32, 32)
    plain.eval()
    dual.eval()
    with torch.no_grad():
        torch.testing.assert_close(dual(x), plain(x))
        with bn_route(dual, "trigger"):  # the trigger pair starts from the same statistics
            torch.testing.assert_close(dual(x), plain(x))
