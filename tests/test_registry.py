"""The one registry idiom (wmstudio.registry) and the engine's registries (wmstudio.catalog): names are
unique, an unknown name is refused with the field and the choices, lazy entries load their target, and
the config schema's choices are the registries' names."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from wmstudio import catalog
from wmstudio.config import ExperimentConfig
from wmstudio.config_io import load_config, to_toml
from wmstudio.errors import ConfigError
from wmstudio.registry import Lazy, Registry


def _choices(section: type, name: str) -> tuple[str, ...]:
    return next(f for f in dataclasses.fields(section) if f.name == name).metadata["choices"]


def test_register_get_names_list_and_the_decorator() -> None:
    reg: Registry[object] = Registry("widget", "widgets.kind")
    reg.register("a", 1, help="the first")

    @reg.register("b", help="the second")
    def b() -> int:
        return 2

    assert b() == 2  # the decorator returns what it decorates
    assert reg.get("a") == 1 and reg.get("b") is b
    assert reg.names() == ("a", "b") and list(reg) == ["a", "b"] and len(reg) == 2
    assert reg.list() == [("a", "the first"), ("b", "the second")]
    assert "a" in reg and "c" not in reg


def test_unregister_removes_the_entry_and_its_help() -> None:
    reg: Registry[int] = Registry("widget", "widgets.kind")
    reg.register("a", 1, help="the first")
    reg.register("b", 2)
    reg.unregister("a")
    assert reg.names() == ("b",) and reg.help("a") == "" and "a" not in reg
    reg.register("a", 3)  # the name is free again
    assert reg.get("a") == 3
    with pytest.raises(KeyError):
        reg.unregister("c")


def test_a_second_entry_of_one_name_is_refused() -> None:
    reg: Registry[int] = Registry("widget", "widgets.kind")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is registered already"):
        reg.register("a", 2)
    with pytest.raises(ValueError, match="registered already"):
        reg.register("a")(3)
    assert reg.get("a") == 1
    with pytest.raises(ValueError, match="non-empty name"):
        reg.register("", 4)


def test_an_unknown_name_is_a_config_error_naming_the_field_and_the_choices() -> None:
    reg: Registry[int] = Registry("widget", "widgets.kind", also="custom:<name>")
    reg.register("a", 1)
    reg.register("b", 2)
    with pytest.raises(ConfigError, match=r"^widgets\.kind: unknown widget 'z'; known: a, b, or custom:<name>$") as e:
        reg.get("z")
    assert e.value.field == "widgets.kind"
    with pytest.raises(ConfigError, match="known: a, b"):
        reg.get(["not", "hashable"])  # type: ignore[arg-type]


def test_a_lazy_entry_is_imported_on_its_first_get_only() -> None:
    reg: Registry[object] = Registry("function", "f")
    reg.register("join", Lazy("os.path:join"))
    import os.path

    assert reg.get("join") is os.path.join
    assert reg.get("join") is os.path.join


def test_every_catalog_entry_loads() -> None:
    for registry in (catalog.MODELS, catalog.METHODS, catalog.ATTACKS, catalog.TRIGGER_SCHEMES):
        for name in registry:
            assert callable(registry.get(name)), (registry.kind, name)
    for name in catalog.DATASETS:
        assert callable(catalog.DATASETS.get(name).loader.load()), name


def test_the_config_choices_are_the_registries_names() -> None:
    from wmstudio.config import (
        AttackSection,
        DataSection,
        DatasetSpec,
        EmbedSection,
        TriggerSection,
    )

    assert _choices(DataSection, "dataset") == catalog.DATASETS.names()
    assert _choices(DatasetSpec, "name") == catalog.DATASETS.names()
    assert _choices(TriggerSection, "scheme") == catalog.TRIGGER_SCHEMES.names()
    assert _choices(EmbedSection, "method") == catalog.METHODS.names()
    assert _choices(AttackSection, "kind") == catalog.ATTACKS.names()
    example = to_toml(ExperimentConfig(), comments=True)
    assert " | ".join(catalog.ATTACKS.names()) in example  # the commented example lists them too
    with pytest.raises(ConfigError, match="embed.method: expected one of " + ", ".join(catalog.METHODS.names())):
        load_config(data={"embed": {"method": "nope"}})


def test_the_model_options_and_torchvision_tables_name_registered_entries_only() -> None:
    from wmstudio.data.torchvision_sets import TORCHVISION_CLASSES
    from wmstudio.model_options import OPTIONS

    assert set(OPTIONS) <= set(catalog.MODELS.names())
    assert set(TORCHVISION_CLASSES) <= set(catalog.DATASETS.names())


def test_the_catalog_and_the_config_load_without_torch() -> None:
    code = "import sys, wmstudio.catalog, wmstudio.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_landscape_kinds_are_registered_objects_and_the_kind_tuples_follow_them() -> None:
    from wmstudio.landscape.spec import CENTRED_KINDS, KINDS, LANDSCAPE_KINDS, LINE_KINDS

    assert LANDSCAPE_KINDS.names() == KINDS
    assert LINE_KINDS == ("line", "hessian_line", "curve")
    assert CENTRED_KINDS == ("random", "pca", "hessian", "hessian_line", "displacement")
    with pytest.raises(ConfigError, match="^kind: unknown landscape kind 'nope'; known: random, plane"):
        LANDSCAPE_KINDS.get("nope")
    from wmstudio.landscape.kinds import BUILTIN
    from wmstudio.landscape.kinds.base import LandscapeKind

    assert KINDS == BUILTIN and all(isinstance(LANDSCAPE_KINDS.get(k), LandscapeKind) for k in KINDS)
    assert all(LANDSCAPE_KINDS.help(k) == LANDSCAPE_KINDS.get(k).help != "" for k in KINDS)


def test_the_method_and_attack_fields_describe_every_entry_from_the_registry() -> None:
    """The attack and method help texts listed the entries by hand (a second place to edit when one is added)."""
    import dataclasses

    from wmstudio import catalog
    from wmstudio.config import AttackSection, EmbedSection

    helps = {f.name: f.metadata["help"] for c in (AttackSection, EmbedSection) for f in dataclasses.fields(c)}
    for name, text in catalog.ATTACKS.list():
        assert f"{name}: {text}" in helps["kind"]
    for name, text in catalog.METHODS.list():
        assert f"{name}: {text}" in helps["method"]
