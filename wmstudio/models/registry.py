"""Models by name (the factories catalog.MODELS registers), a user's own model file, and the classifier
head of any model."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from wmstudio.catalog import MODELS
from wmstudio.control import cancellable
from wmstudio.errors import Cancelled, ConfigError
from wmstudio.model_options import check_options


# The factories catalog.MODELS registers: factory(in_channels, num_classes, image_size, **options).
# Each imports its model's module when called, so listing the registry loads no model code.
def small_cnn(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    from wmstudio.models.small_cnn import SmallCNN

    return SmallCNN(c, k, **kw)


def _resnet(depth: int, c: int, k: int, **kw: Any) -> nn.Module:
    from wmstudio.models.resnet_cifar import CifarResNet

    return CifarResNet(depth, c, k, **kw)


def resnet20(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    return _resnet(20, c, k, **kw)


def resnet32(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    return _resnet(32, c, k, **kw)


def resnet56(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    return _resnet(56, c, k, **kw)


def fastcnn(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    from wmstudio.models.fast_cnn import FastCNN

    return FastCNN(c, k, **kw)


def resnet18(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    from wmstudio.models.resnet_cifar import ResNet18Cifar

    return ResNet18Cifar(c, k, **kw)


def vit(c: int, k: int, s: int, **kw: Any) -> nn.Module:
    from wmstudio.models.vit import SmallViT

    kw.setdefault("patch", 4 if s % 4 == 0 else 2 if s % 2 == 0 else 1)
    if s % kw["patch"]:
        raise ConfigError("model.options.patch", f"the image side {s} is not a multiple of the patch size {kw['patch']}")
    return SmallViT(c, k, s, **kw)


def _torchvision(name: str, c: int, k: int, **kw: Any) -> nn.Module:
    import torchvision.models as tvm

    try:
        factory = tvm.get_model_builder(name)
    except ValueError as exc:
        raise ConfigError("model.arch", f"torchvision has no model {name!r}") from exc
    model = factory(weights=None, num_classes=k, **kw)
    if c != 3:
        raise ConfigError("model.arch", f"torchvision:{name} takes 3-channel images; this data set has {c}")
    return model


def _exit_code(exc: SystemExit) -> str:
    return "" if exc.code is None else repr(exc.code)


def _user_model(file: str, factory: str, c: int, k: int, s: int, **kw: Any) -> nn.Module:
    path = Path(file).expanduser()
    if not path.is_file():
        raise ConfigError("model.file", f"no such Python file: {path}")
    spec = importlib.util.spec_from_file_location(f"wmstudio_user_model_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError("model.file", f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    try:  # a slow or hanging import is cancelled with its job (the app's Cancel and Quit do not wait for it)
        cancellable(lambda: loader.exec_module(module))
    except SystemExit as exc:  # the file's own sys.exit() must not end (or silently stop) the run, the app or a worker
        raise ConfigError("model.file", f"{path} called sys.exit({_exit_code(exc)}) while being imported") from exc
    except Cancelled:
        raise
    except Exception as exc:
        raise ConfigError("model.file", f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        raise ConfigError("model.factory", f"{path} defines no function or class named {factory!r}")
    offered = {"in_channels": c, "num_classes": k, "image_size": s, **kw}
    try:
        params = inspect.signature(fn).parameters
        accepts_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        args = offered if accepts_all else {n: v for n, v in offered.items() if n in params}
    except (TypeError, ValueError):
        args = offered
    try:
        model = cancellable(lambda: fn(**args))
    except SystemExit as exc:
        raise ConfigError("model.factory",
                          f"{path}:{factory} called sys.exit({_exit_code(exc)}) while building the model") from exc
    if not isinstance(model, nn.Module):
        raise ConfigError("model.factory", f"{path}:{factory} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_model(arch: str, in_channels: int, num_classes: int, image_size: int,
                options: dict[str, Any] | None = None, file: str = "", factory: str = "",
                field: str = "model.options") -> nn.Module:
    """The model ``arch`` (or a user's ``file``/``factory``) with ``options`` checked: a bad option
    raises ConfigError naming ``field.<option>``; an error inside a constructor names the model."""
    opts = dict(options or {})
    if file:
        return _user_model(file, factory, in_channels, num_classes, image_size, **opts)
    if not arch.startswith("torchvision:"):
        make = MODELS.get(arch)  # an unknown name: ConfigError naming model.arch and the known names
        opts = check_options(arch, opts, field)
    try:
        if arch.startswith("torchvision:"):
            return _torchvision(arch.split(":", 1)[1], in_channels, num_classes, **opts)
        return make(in_channels, num_classes, image_size, **opts)
    except (TypeError, ValueError, RuntimeError, AssertionError) as exc:  # a constructor refusing the options
        raise ConfigError(field, f"{arch} cannot be built with options {opts}: {exc}") from exc


def output_count(requested: int, num_classes: int) -> int:
    """The classifier's output count: ``model.num_classes`` when set (>= the data's classes), else ``num_classes``."""
    if requested and requested < num_classes:
        raise ConfigError("model.num_classes", f"{requested} outputs, but the data set has {num_classes} classes")
    return requested or num_classes


def last_linear_name(model: nn.Module) -> str:
    """The qualified name of the classifier head: the last nn.Linear in definition order."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ConfigError("finetune.variant", f"{type(model).__name__} has no nn.Linear classifier head")
    return names[-1]


# ---------------------------------------------------------------- classifier head for another class count

@dataclass(frozen=True)
class HeadChange:
    """The checkpoint's classifier head has ``checkpoint_classes`` outputs; the model's has ``classes``."""

    layer: str
    checkpoint_classes: int
    classes: int

    def message(self) -> str:
        return f"head {self.layer} re-initialised: {self.checkpoint_classes} -> {self.classes} classes"


def head_change(model: nn.Module, state_dict: Mapping[str, Any]) -> HeadChange | None:
    """A HeadChange when the checkpoint's last nn.Linear differs from the model's in its output count only."""
    heads = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not heads:
        return None
    name, head = heads[-1]
    w = state_dict.get(f"{name}.weight")
    if w is None or tuple(w.shape) == tuple(head.weight.shape) or w.ndim != 2 or w.shape[1] != head.in_features:
        return None
    return HeadChange(name, int(w.shape[0]), head.out_features)


@contextmanager
def checkpoint_head(model: nn.Module, change: HeadChange) -> Iterator[None]:
    """Within the block the model carries a head shaped like the checkpoint's; after it, its own fresh head again."""
    parent_name, _, attr = change.layer.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    own = getattr(parent, attr)
    setattr(parent, attr, nn.Linear(own.in_features, change.checkpoint_classes, bias=own.bias is not None))
    try:
        yield
    finally:
        setattr(parent, attr, own)
