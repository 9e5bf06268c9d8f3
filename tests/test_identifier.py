"""Identifiers: seed semantics, typed encoding, schema evolution, golden file, cross-process."""

from __future__ import annotations

import enum
import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import golden_configs
import pytest
from conftest import ROOT, TESTS, run_python

from xpm import Config, Constant, Identifier, Meta, Param, PathGenerator, field
from xpm._identifier import FORMAT, encode_config, identifier_of
from xpm._task import Task, mark_outputs
from xpm.errors import ConfigError


class CNN(Config):
    n_layers: Param[int] = 2
    """Number of layers"""
    activation: Param[str] = "relu"
    device: Meta[str] = "cpu"


class Anything(Config):
    value: Param[Any] = None


class Holder(Config):
    cnn: Param[CNN]
    cnns: Param[list[CNN]] = field(default_factory=list)


def hexid(cfg: Config) -> str:
    return str(cfg.__identifier__().hex)


# --- identifier objects ----------------------------------------------------------------------


def test_identifier_is_a_64_hex_sha256() -> None:
    ident = CNN(n_layers=3).__identifier__()
    assert isinstance(ident, Identifier)
    assert len(ident.hex) == 64 and all(c in "0123456789abcdef" for c in ident.hex)
    assert len(ident.digest) == 32 and str(ident) == ident.hex
    assert ident == CNN(n_layers=3).__identifier__()  # equal objects for equal configs
    assert hash(ident) == hash(CNN(n_layers=3).__identifier__())
    assert ident != CNN(n_layers=4).__identifier__() and ident != ident.hex
    assert repr(ident) == f"Identifier({ident.hex[:16]}...)"


def test_encoding_of_the_seed_example_byte_by_byte() -> None:
    # The worked example of docs/identifiers.md.
    expected = (
        b"xpm-id\x001\x00"
        + b"S\x00\x00\x00\x13test_identifier.cnn"
        + b"=\x00\x00\x00\x08n_layers"
        + b"I\x00\x00\x00\x013"
    )
    assert FORMAT == b"xpm-id\x001\x00"
    assert encode_config(CNN(n_layers=3, device="cuda")) == expected
    import hashlib

    assert hexid(CNN(n_layers=3)) == hashlib.sha256(expected).hexdigest()


# --- seed semantics --------------------------------------------------------------------------


def test_value_equal_to_default_is_skipped() -> None:
    assert CNN().__identifier__() == CNN(n_layers=2).__identifier__()
    assert hexid(CNN()) == hexid(CNN(n_layers=2, activation="relu"))
    assert hexid(CNN(n_layers=3)) != hexid(CNN())
    assert encode_config(CNN()) == FORMAT + b"S\x00\x00\x00\x13test_identifier.cnn"


def test_meta_never_changes_the_identifier() -> None:
    assert hexid(CNN(device="cuda")) == hexid(CNN())
    cnn = CNN(n_layers=5)
    before = hexid(cnn)
    cnn.device = "tpu"
    assert hexid(cnn) == before
    assert hexid(Holder(cnn=CNN(device="a"))) == hexid(Holder(cnn=CNN(device="b")))


def test_default_type_id_is_lowercased_module_and_qualname() -> None:
    assert CNN.__xpm__.typeid == "test_identifier.cnn"
    assert golden_configs.Outer.Inner.__xpm__.typeid == "golden_configs.outer.inner"


def test_constant_is_hashed_and_bumping_it_changes_the_identifier() -> None:
    class ModelV1(Config):
        __xpmid__ = "tests.constant_model"
        version: Constant[int] = 1
        x: Param[int] = 0

    class ModelV2(Config):
        __xpmid__ = "tests.constant_model"
        version: Constant[int] = 2
        x: Param[int] = 0

    class NoConstant(Config):
        __xpmid__ = "tests.constant_model"
        x: Param[int] = 0

    assert b"=\x00\x00\x00\x07version" in encode_config(ModelV1())  # even at its only value
    assert hexid(ModelV1()) != hexid(ModelV2())
    assert hexid(ModelV1()) != hexid(NoConstant())
    assert hexid(ModelV1(x=3)) != hexid(ModelV2(x=3))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (True, 1),
        (1, 1.0),
        ("1", 1),
        (True, "True"),
        (True, 1.0),
        (False, 0),
        (0, 0.0),
        (None, 0),
        (None, "None"),
        ("", None),
        ([1, 2], [2, 1]),  # lists keep their order
        ([1, 2], (1, 2)),  # list and tuple differ
        ([1], [True]),
        ({"a": 1}, {"a": 1.0}),
        ({"a": 1}, [("a", 1)]),
        (Path("a"), "a"),
        (0.1 + 0.2, 0.3),
        ([[]], [[], []]),
        ("ab", ["a", "b"]),
    ],
)
def test_values_of_different_kinds_never_collide(a: Any, b: Any) -> None:
    assert hexid(Anything(value=a)) != hexid(Anything(value=b))


def test_bool_and_int_stay_apart_in_unions() -> None:
    class U(Config):
        v: Param[int | bool] = 5

    assert hexid(U(v=True)) != hexid(U(v=1))
    assert hexid(U(v=False)) != hexid(U(v=0))


def test_dict_insertion_order_does_not_matter() -> None:
    one = Anything(value={"b": 2, "a": 1, "c": [1, {"y": 1, "x": 2}]})
    two = Anything(value={"c": [1, {"x": 2, "y": 1}], "a": 1, "b": 2})
    assert hexid(one) == hexid(two)


def test_list_order_matters_for_configs_too() -> None:
    a = Holder(cnn=CNN(), cnns=[CNN(n_layers=1), CNN(n_layers=2)])
    b = Holder(cnn=CNN(), cnns=[CNN(n_layers=2), CNN(n_layers=1)])
    assert hexid(a) != hexid(b)


def test_floats_are_exact_and_nan_is_canonical() -> None:
    other_nan = struct.unpack(">d", b"\x7f\xf8\x00\x00\x00\x00\x00\x01")[0]
    assert math.isnan(other_nan)
    assert hexid(Anything(value=math.nan)) == hexid(Anything(value=other_nan))
    assert hexid(Anything(value=-math.nan)) == hexid(Anything(value=math.nan))
    assert hexid(Anything(value=math.inf)) != hexid(Anything(value=-math.inf))
    assert hexid(Anything(value=1.0)) != hexid(Anything(value=1.0 + 2**-52))
    assert hexid(Anything(value=0.0)) != hexid(Anything(value=-0.0))


def test_enums_and_paths() -> None:
    class Mode(enum.Enum):
        A = 1
        B = 2

    assert hexid(Anything(value=Mode.A)) != hexid(Anything(value=Mode.B))
    assert hexid(Anything(value=Mode.A)) != hexid(Anything(value=1))
    assert hexid(Anything(value=Path("a/b"))) == hexid(Anything(value=Path("a") / "b"))


def test_nested_configs_count_by_their_identifier() -> None:
    assert hexid(Holder(cnn=CNN(n_layers=3))) != hexid(Holder(cnn=CNN()))
    inner = CNN(n_layers=3)
    assert inner.__identifier__().digest in encode_config(Holder(cnn=inner))
    deep = Anything(value=[{"k": Anything(value=Holder(cnn=CNN(n_layers=7)))}])
    deeper = Anything(value=[{"k": Anything(value=Holder(cnn=CNN(n_layers=8)))}])
    assert hexid(deep) != hexid(deeper)


def test_default_nested_config_is_skipped_like_any_default() -> None:
    class WithSub(Config):
        cnn: Param[CNN] = field(default_factory=CNN)

    assert hexid(WithSub()) == hexid(WithSub(cnn=CNN(n_layers=2, device="gpu")))
    assert hexid(WithSub()) != hexid(WithSub(cnn=CNN(n_layers=3)))


def test_default_is_only_skipped_when_encoded_the_same() -> None:
    class Defaults(Config):
        __xpmid__ = "tests.defaults"
        v: Param[Any] = 1
        xs: Param[Any] = field(default_factory=lambda: [1])

    class Bare(Config):
        __xpmid__ = "tests.defaults"

    assert hexid(Defaults()) == hexid(Bare())
    assert hexid(Defaults(v=True)) != hexid(Bare())  # True == 1, but a different value
    assert hexid(Defaults(v=1.0)) != hexid(Bare())
    assert hexid(Defaults(xs=[True])) != hexid(Bare())


# --- schema evolution ------------------------------------------------------------------------


def test_adding_a_defaulted_parameter_keeps_identifiers() -> None:
    class Before(Config):
        __xpmid__ = "tests.evolving"
        n_layers: Param[int] = 2
        required: Param[str]

    class After(Config):
        __xpmid__ = "tests.evolving"
        n_layers: Param[int] = 2
        required: Param[str]
        dropout: Param[float] = 0.0  # new, with a default
        extra: Param[CNN | None] = None
        seed: Meta[int] = 0

    for kwargs in ({"required": "a"}, {"required": "b", "n_layers": 5}):
        assert hexid(Before(**kwargs)) == hexid(After(**kwargs))
    assert hexid(After(required="a", dropout=0.5)) != hexid(Before(required="a"))


def test_renaming_a_class_with_xpmid_keeps_identifiers() -> None:
    class OldName(Config):
        __xpmid__ = "mylab.model"
        n_layers: Param[int] = 2

    class NewName(Config):
        __xpmid__ = "mylab.model"
        n_layers: Param[int] = 2

    assert OldName.__xpm__.typeid == NewName.__xpm__.typeid == "mylab.model"
    assert hexid(OldName(n_layers=4)) == hexid(NewName(n_layers=4))

    class Derived(OldName):
        pass  # __xpmid__ is not inherited: a subclass is another type

    assert Derived.__xpm__.typeid.endswith("derived")
    assert hexid(Derived(n_layers=4)) != hexid(OldName(n_layers=4))


# --- outputs and generated paths -------------------------------------------------------------


def test_generated_paths_do_not_count() -> None:
    class Out(Config):
        __xpmid__ = "tests.out"
        model: Param[Path] = field(default_factory=PathGenerator("model.pth"))
        x: Param[int] = 0

    class NoOut(Config):
        __xpmid__ = "tests.out"
        x: Param[int] = 0

    assert hexid(Out()) == hexid(NoOut())
    assert hexid(Out(model=Path("/elsewhere"))) == hexid(NoOut())


def test_task_outputs_count_the_task() -> None:
    class Train(Task):
        model: Param[CNN]
        epochs: Param[int] = 1

    def output_of(task: Train) -> CNN:
        out = CNN(n_layers=task.model.n_layers)
        mark_outputs(task, out)
        return out

    plain = CNN(n_layers=3)
    out1 = output_of(Train(model=CNN(n_layers=3), epochs=1))
    out2 = output_of(Train(model=CNN(n_layers=3), epochs=2))
    assert hexid(out1) != hexid(plain) and hexid(out1) != hexid(out2)
    task = Train(model=CNN(n_layers=3), epochs=1)
    assert encode_config(out1).startswith(FORMAT + b"O" + task.__identifier__().digest)


def test_frozen_identifier_is_cached_and_assignment_recomputes() -> None:
    cnn = CNN(n_layers=3)
    first = cnn.__identifier__()
    cnn.n_layers = 4
    assert cnn.__identifier__() != first
    cnn.__xpm_freeze__()
    assert identifier_of(cnn) is identifier_of(cnn)


def test_unencodable_values_are_reported() -> None:
    cfg = Anything()
    cfg.__dict__["value"] = {1, 2}  # bypasses validation on purpose
    with pytest.raises(
        ConfigError,
        match=r"^Anything\.value: cannot compute an identifier for a value of type set; use bool",
    ):
        cfg.__identifier__()


# --- stability -------------------------------------------------------------------------------


def golden() -> dict[str, str]:
    return json.loads((TESTS / "golden" / "identifiers.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_golden_identifiers() -> None:
    expected = golden()
    assert len(expected) >= 30 and len(set(expected.values())) == len(expected)
    assert golden_configs.identifiers() == expected


def test_changing_the_encoding_fails_the_golden_test(monkeypatch: pytest.MonkeyPatch) -> None:
    import xpm._identifier as ident

    monkeypatch.setattr(ident, "FORMAT", b"xpm-id\x002\x00")
    changed = golden_configs.identifiers()
    assert all(changed[name] != value for name, value in golden().items())
    monkeypatch.undo()
    monkeypatch.setattr(ident, "INT", b"i")
    changed = golden_configs.identifiers()
    assert changed != golden() and changed["cnn_default"] == golden()["cnn_default"]


@pytest.mark.parametrize("seed", ["0", "12345"])
def test_same_identifiers_in_other_processes_and_hash_seeds(seed: str) -> None:
    code = "import json, golden_configs; print(json.dumps(golden_configs.identifiers()))"
    result = run_python(code, env={"PYTHONHASHSEED": seed})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == golden()


def test_script_run_as_main_counts_by_file_stem() -> None:
    # Run as `python tests/golden_configs.py`: classes live in __main__, same identifiers.
    result = subprocess.run(
        [sys.executable, str(TESTS / "golden_configs.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == golden()
