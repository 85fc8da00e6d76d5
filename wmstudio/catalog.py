"""The engine's registries: every word a config chooses an implementation by.

| registry | config field | entry |
|---|---|---|
| ``MODELS`` | ``model.arch``, ``extract.arch`` | factory ``(in_channels, num_classes, image_size, **options) -> nn.Module`` |
| ``METHODS`` | ``embed.method`` | embed stage ``run(session) -> metrics`` |
| ``ATTACKS`` | ``attack.kind`` | stage-2 ``run(session) -> metrics`` |
| ``TRIGGER_SCHEMES`` | ``trigger.scheme`` | ``build(ctx, size=, seed=, **params) -> TriggerSet`` |
| ``DATASETS`` | ``data.dataset``, ``*.source.name`` | a ``DataSource`` (loader, what it takes, native shape) |

Landscape kinds are registered in ``wmstudio.landscape.spec`` (``LANDSCAPE_KINDS``).

Entries point at their implementation lazily (``Lazy("module:attr")``, imported on the first ``get``),
so this module stays torch-free: the config schema (``wmstudio.config``) takes its choices from
``names()`` here, the app's form from the schema, ``wmstudio models`` its list from ``MODELS.list()``.
Adding one: write the implementation, register it here with one line; config, form and CLI follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wmstudio.registry import Lazy, Registry

StageRun = Callable[..., dict[str, float]]  # run(session: Session) -> the stage's final metrics

# ---------------------------------------------------------------- model architectures

MODELS: Registry[Callable[..., Any]] = Registry("model", "model.arch", also="torchvision:<name>")
MODELS.register("small_cnn", Lazy("wmstudio.models.registry:small_cnn"),
                help="4-layer CNN with BatchNorm; for digits and quick CPU runs")
MODELS.register("fastcnn", Lazy("wmstudio.models.registry:fastcnn"),
                help="fast wide-shallow CIFAR net (3 conv-pool blocks, 64/128/128 channels), 0.58M "
                     "parameters; the CPU base model's architecture")
MODELS.register("resnet20", Lazy("wmstudio.models.registry:resnet20"),
                help="CIFAR ResNet-20 (He et al. 2016), 0.27M parameters")
MODELS.register("resnet32", Lazy("wmstudio.models.registry:resnet32"), help="CIFAR ResNet-32, 0.46M parameters")
MODELS.register("resnet56", Lazy("wmstudio.models.registry:resnet56"), help="CIFAR ResNet-56, 0.85M parameters")
MODELS.register("resnet18", Lazy("wmstudio.models.registry:resnet18"),
                help="ResNet-18 with a CIFAR stem (3x3 conv, no max-pool), 11M parameters")
MODELS.register("vit", Lazy("wmstudio.models.registry:vit"),
                help="small ViT for 32x32 inputs (patch 4, width 192, depth 6, 8 heads by default)")

# ---------------------------------------------------------------- watermark embedding methods

METHODS: Registry[StageRun] = Registry("embedding method", "embed.method")
METHODS.register("plain", Lazy("wmstudio.methods.plain:run"), help="plain backdoor training (Adi et al.)")
METHODS.register("certified", Lazy("wmstudio.methods.certified:run"), help="certifiable watermark: robust passes under Gaussian weight noise (Bansal et al.)")
METHODS.register("rowback", Lazy("wmstudio.methods.rowback:run"), help="rotating layer freezes after plain epochs (Chattopadhyay et al.)")
METHODS.register("app", Lazy("wmstudio.methods.app:run"), help="adversarial parameter perturbation during embedding (Gan et al.)")
METHODS.register("ewe", Lazy("wmstudio.methods.ewe:run"), help="entangled watermarks: the triggers share features with the task (Jia et al.)")

# ---------------------------------------------------------------- removal attacks (stage 2)

ATTACKS: Registry[StageRun] = Registry("attack", "attack.kind")
ATTACKS.register("finetune", Lazy("wmstudio.stages.finetune:run_finetune"),
                 help="the fine-tuning stage itself ([finetune] / [extract] as set)")
ATTACKS.register("prune", Lazy("wmstudio.attacks.prune:run"), help="global magnitude pruning of the conv and linear weights")
ATTACKS.register("channel_prune", Lazy("wmstudio.attacks.channel_prune:run"),
                 help="structured pruning of the smallest-L1 filters")
ATTACKS.register("fine_prune", Lazy("wmstudio.attacks.fine_prune:run"),
                 help="Liu et al. 2018: prune the last conv layer's least active channels, then fine-tune with [finetune]")
ATTACKS.register("quantize", Lazy("wmstudio.attacks.quantize:run"), help="int weights, symmetric, per output channel")
ATTACKS.register("noise", Lazy("wmstudio.attacks.noise:run"), help="Gaussian weight noise")
ATTACKS.register("distill", Lazy("wmstudio.attacks.distill:run"), help="soft labels into a fresh [extract] student")
ATTACKS.register("neural_cleanse", Lazy("wmstudio.attacks.neural_cleanse:run"),
                 help="reverse-engineered trigger unlearning with [finetune]'s recipe")

# ---------------------------------------------------------------- trigger-set schemes

TRIGGER_SCHEMES: Registry[Callable[..., Any]] = Registry("trigger scheme", "trigger.scheme")
TRIGGER_SCHEMES.register("abstract", Lazy("wmstudio.triggers.abstract:build"), help="abstract images")
TRIGGER_SCHEMES.register("content", Lazy("wmstudio.triggers.content:build"), help="a stamp on real images")
TRIGGER_SCHEMES.register("noise", Lazy("wmstudio.triggers.noise:build"), help="a fixed noise pattern on real images")
TRIGGER_SCHEMES.register("unrelated", Lazy("wmstudio.triggers.unrelated:build"), help="images of another data set")
TRIGGER_SCHEMES.register("adversarial", Lazy("wmstudio.triggers.adversarial:build"),
                         help="FGSM examples of a trained clean model")
TRIGGER_SCHEMES.register("folder", Lazy("wmstudio.triggers.folder:build"), help="a folder of images")
# what trigger.label_mode "auto" means for each scheme that labels its images (a folder's images keep their own)
AUTO_LABEL_MODE = {"abstract": "random", "content": "target", "noise": "target", "unrelated": "target",
                   "adversarial": "random_other"}

# ---------------------------------------------------------------- data sets


@dataclass(frozen=True)
class DataSource:
    """A data set by name: ``loader`` returns a DataPair and is called with the keyword arguments
    ``takes`` names (of ``name``, ``root``, ``download``, ``image_size``, ``cache_dir``)."""

    loader: Lazy
    takes: tuple[str, ...] = ()
    needs_root: bool = False  # a folder or archive path is required (data.root)
    native: tuple[int, int, int] | None = None  # (channels, classes, side) when fixed, else None

    def load(self, **available: Any) -> Any:
        return self.loader.load()(**{k: available[k] for k in self.takes})


_TORCHVISION = Lazy("wmstudio.data.torchvision_sets:load_torchvision")
_TV_ARGS = ("name", "root", "download")

DATASETS: Registry[DataSource] = Registry("data set", "data.dataset")
DATASETS.register("digits", DataSource(Lazy("wmstudio.data.builtin:load_digits"), native=(1, 10, 8)),
                  help="scikit-learn's 8x8 digits, built in (no download)")
DATASETS.register("cifar10", DataSource(_TORCHVISION, _TV_ARGS, native=(3, 10, 32)), help="torchvision CIFAR-10")
DATASETS.register("cifar100", DataSource(_TORCHVISION, _TV_ARGS, native=(3, 100, 32)), help="torchvision CIFAR-100")
DATASETS.register("mnist", DataSource(_TORCHVISION, _TV_ARGS, native=(1, 10, 28)), help="torchvision MNIST")
DATASETS.register("fashion-mnist", DataSource(_TORCHVISION, _TV_ARGS, native=(1, 10, 28)),
                  help="torchvision Fashion-MNIST")
DATASETS.register("svhn", DataSource(_TORCHVISION, _TV_ARGS, native=(3, 10, 32)), help="torchvision SVHN")
DATASETS.register("imagefolder", DataSource(Lazy("wmstudio.data.imagefolder:load_imagefolder"),
                                            ("root", "image_size", "cache_dir"), needs_root=True),
                  help="an ImageFolder tree (train/<class>/*, test/<class>/*) or a .tar/.tar.gz of one")
DATASETS.register("idx", DataSource(Lazy("wmstudio.data.idx:load_idx"), ("root",), needs_root=True),
                  help="a folder of IDX files (MNIST's format)")
