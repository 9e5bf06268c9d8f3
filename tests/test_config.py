"""Configurations: declaration, every supported value type, validation messages, docs, describe."""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Any, Optional

import pytest

import xpm
from xpm import Config, Constant, Meta, Param, PathGenerator, describe, field, tag
from xpm._config import check_required
from xpm._types import GeneratedPath
from xpm.errors import ConfigError, XpmError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class CNN(Config):
    """A convolutional network.

    Second paragraph of the class doc.
    """

    n_layers: Param[int] = 2
    """Number of layers"""
    activation: Param[str] = "relu"
    """Activation function,
    on two lines"""
    device: Meta[str] = "cpu"


class Sub(Config):
    a: Param[int] = 1
    b: Param[float] = 0.5


class AllTypes(Config):
    flag: Param[bool] = False
    count: Param[int] = 0
    rate: Param[float] = 0.0
    name: Param[str] = ""
    path: Param[Path] = Path("data")
    color: Param[Color] = Color.RED
    maybe: Param[Optional[int]] = None  # noqa: UP045 (the spelling users write)
    maybe_new: Param[int | None] = None
    either: Param[int | str] = 0
    ints: Param[list[int]] = field(default_factory=list)
    pair: Param[tuple[int, str]] = (0, "")
    floats: Param[tuple[float, ...]] = ()
    table: Param[dict[str, float]] = field(default_factory=dict)
    sub: Param[Sub] = field(default_factory=Sub)
    subs: Param[list[Sub]] = field(default_factory=list)
    sub_table: Param[dict[str, Sub]] = field(default_factory=dict)
    deep: Param[dict[str, list[tuple[int, Optional[Sub]]]]] = field(  # noqa: UP045
        default_factory=dict
    )
    anything: Param[Any] = None


class Required(Config):
    size: Param[int]
    sub: Param[Sub]


class Holder(Config):
    inner: Param[Required]


class Versioned(Config):
    version: Constant[int] = 3
    x: Param[int] = 0


class WithOutput(Config):
    out: Meta[Path] = field(default_factory=PathGenerator("model.pth"))


# --- declaration -----------------------------------------------------------------------------


def test_public_api_is_importable_from_xpm() -> None:
    assert xpm.Config is Config and xpm.field is field and xpm.describe is describe
    assert issubclass(xpm.XpmError, Exception)


def test_values_defaults_and_kinds() -> None:
    cnn = CNN(n_layers=3)
    assert (cnn.n_layers, cnn.activation, cnn.device) == (3, "relu", "cpu")
    info = CNN.__xpm__
    assert list(info.params) == ["n_layers", "activation", "device"]
    assert info.params["n_layers"].kind.value == "param"
    assert info.params["device"].kind.value == "meta"
    assert Versioned.__xpm__.params["version"].kind.value == "constant"
    assert info.params["n_layers"].default == 2 and not info.params["n_layers"].required
    assert Required.__xpm__.params["size"].required


def test_default_factory_gives_each_config_its_own_value() -> None:
    a, b = AllTypes(), AllTypes()
    a.ints.append(1)
    assert b.ints == [] and a.sub is not b.sub


def test_mutable_plain_default_is_copied() -> None:
    class Lists(Config):
        xs: Param[list[int]] = [1, 2]

    a, b = Lists(), Lists()
    a.xs.append(3)
    assert b.xs == [1, 2]

    class Pairs(Config):
        pair: Param[tuple[Sub, int]] = (Sub(), 1)

    c, d = Pairs(), Pairs()
    c.pair[0].a = 5
    assert d.pair[0].a == 1 and c.pair[0] is not d.pair[0]


def test_field_rejects_default_and_factory_together() -> None:
    with pytest.raises(ConfigError, match="either default= or default_factory="):
        field(default=1, default_factory=list)


def test_field_default_value() -> None:
    class F(Config):
        x: Param[int] = field(default=4)

    assert F().x == 4


def test_inheritance_and_default_override() -> None:
    class Base(Config):
        x: Param[int] = 1
        y: Param[str] = "a"

    class Child(Base):
        x = 5  # new default without re-annotating
        z: Param[float] = 0.0

    class GrandChild(Child):
        pass

    # Build the most derived class first: its class info must not lose Child's override.
    assert GrandChild().x == 5
    assert Child().x == 5 and Base().x == 1
    assert list(Child.__xpm__.params) == ["x", "y", "z"]


def test_every_supported_type_is_converted() -> None:
    cfg = AllTypes(
        flag=True,
        count=3,
        rate=2,  # int -> float
        name="n",
        path="runs/a",  # str -> Path
        color="BLUE",  # member name -> Enum
        maybe=4,
        maybe_new=None,
        either="x",
        ints=(1, 2),  # tuple -> list
        pair=[1, "one"],  # list -> tuple
        floats=[1, 2.5],
        table={"a": 1},
        sub=Sub(a=2),
        subs=[Sub(), Sub(b=1.5)],
        sub_table={"k": Sub(a=3)},
        deep={"x": [(1, None), (2, Sub())]},
        anything={"k": [1, "two", 3.0, None, Path("p"), Color.RED, Sub()]},
    )
    assert cfg.rate == 2.0 and type(cfg.rate) is float
    assert cfg.path == Path("runs/a") and isinstance(cfg.path, Path)
    assert cfg.color is Color.BLUE
    assert cfg.ints == [1, 2] and cfg.pair == (1, "one") and cfg.floats == (1.0, 2.5)
    assert type(cfg.floats[0]) is float
    assert cfg.table == {"a": 1.0} and type(cfg.table["a"]) is float
    assert cfg.subs[1].b == 1.5 and cfg.sub_table["k"].a == 3
    assert cfg.deep["x"][1][1] == Sub()


def test_assignment_converts_and_resets_identifier() -> None:
    cnn = CNN()
    before = cnn.__identifier__()
    cnn.n_layers = 5
    assert cnn.n_layers == 5 and cnn.__identifier__() != before
    cnn.device = "cuda"
    cfg = AllTypes()
    cfg.path = "x/y"
    assert cfg.path == Path("x/y")


def test_underscore_attributes_are_free() -> None:
    cnn = CNN()
    cnn._cache = [1]
    assert cnn._cache == [1]


def test_union_keeps_bool_and_int_apart() -> None:
    class U(Config):
        v: Param[int | bool] = 0
        w: Param[float | str] = 0.0

    assert type(U(v=True).v) is bool and type(U(v=1).v) is int
    assert type(U(w=1).w) is float and U(w="a").w == "a"


def test_equality_and_repr() -> None:
    assert CNN(n_layers=3) == CNN(n_layers=3)
    assert CNN(n_layers=3) != CNN(n_layers=4)
    assert CNN(device="cuda") != CNN()  # equality covers every value, Meta included
    assert AllTypes(rate=math.nan) == AllTypes(rate=math.nan)
    assert AllTypes(anything=1) != AllTypes(anything=True)
    assert AllTypes(anything=1) != AllTypes(anything=1.0)
    assert repr(CNN(n_layers=3)) == "CNN(n_layers=3)"
    assert hash(CNN(n_layers=3)) == hash(CNN(n_layers=3, device="gpu"))


def test_tag_unwraps_the_value() -> None:
    cnn = CNN(n_layers=tag(4))
    assert cnn.n_layers == 4
    assert cnn.__identifier__() == CNN(n_layers=4).__identifier__()


def test_generated_path_default() -> None:
    cfg = WithOutput()
    assert cfg.out == GeneratedPath("model.pth")
    with pytest.raises(ConfigError, match=r"PathGenerator\('\.\./x'\): the path must stay inside"):
        PathGenerator("../x")


# --- validation messages ---------------------------------------------------------------------


def _error(fn: Any) -> str:
    with pytest.raises(XpmError) as info:
        fn()
    error = info.value
    assert isinstance(error, ConfigError)
    # No chained traceback from deep inside the library, and few library frames.
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    library_frames = [e for e in info.traceback if "/xpm/" in str(e.path)]
    assert len(library_frames) <= 6, info.traceback
    return str(error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": "3"}, "AllTypes.count: expected int, got str '3'"),
        ({"count": True}, "AllTypes.count: expected int, got bool True"),
        ({"count": 1.5}, "AllTypes.count: expected int, got float 1.5"),
        ({"rate": True}, "AllTypes.rate: expected float, got bool True"),
        ({"rate": "0.1"}, "AllTypes.rate: expected float, got str '0.1'"),
        ({"flag": 1}, "AllTypes.flag: expected bool, got int 1"),
        ({"name": 5}, "AllTypes.name: expected str, got int 5"),
        ({"path": 3}, "AllTypes.path: expected Path (or str), got int 3"),
        ({"color": "GREEN"}, "AllTypes.color: expected Color (one of RED, BLUE), got str 'GREEN'"),
        ({"maybe": "x"}, "AllTypes.maybe: expected int | None, got str 'x'"),
        ({"either": 1.5}, "AllTypes.either: expected int | str, got float 1.5"),
        ({"ints": 3}, "AllTypes.ints: expected list[int], got int 3"),
        ({"ints": [1, "2"]}, "AllTypes.ints[1]: expected int, got str '2'"),
        ({"pair": (1,)}, "AllTypes.pair: expected tuple[int, str] (2 items), got tuple (1,)"),
        ({"pair": (1, 2)}, "AllTypes.pair[1]: expected str, got int 2"),
        ({"table": {"a": "x"}}, "AllTypes.table['a']: expected float, got str 'x'"),
        ({"table": {1: 1.0}}, "AllTypes.table[1]: expected str keys, got int 1"),
        ({"sub": CNN()}, "AllTypes.sub: expected a Sub configuration, got CNN CNN()"),
        ({"subs": [Sub(), 1]}, "AllTypes.subs[1]: expected a Sub configuration, got int 1"),
        (
            {"deep": {"k": [(1, Sub()), (2, "s")]}},
            "AllTypes.deep['k'][1][1]: expected Sub | None, got str 's'",
        ),
        (
            {"anything": {1, 2}},
            "AllTypes.anything: expected a supported value (bool, int, float, str, None, Path, "
            "Enum, Config, or a list, tuple or dict[str, ...] of those), got set {1, 2}",
        ),
        ({"anything": {"a": {3: 1}}}, "AllTypes.anything['a'][3]: expected str keys, got int 3"),
    ],
)
def test_wrong_type_at_construction(kwargs: dict[str, Any], message: str) -> None:
    assert _error(lambda: AllTypes(**kwargs)) == message


def test_wrong_type_at_assignment() -> None:
    cfg = AllTypes()
    assert _error(lambda: setattr(cfg, "count", "3")) == (
        "AllTypes.count: expected int, got str '3'"
    )
    assert cfg.count == 0  # unchanged


def test_long_values_are_shortened_in_messages() -> None:
    message = _error(lambda: AllTypes(name=["x" * 200]))
    assert message.startswith("AllTypes.name: expected str, got list ['xxx")
    assert message.endswith("...") and len(message) < 120


def test_unknown_name_suggests_the_closest() -> None:
    assert _error(lambda: CNN(n_layer=3)) == (
        "CNN has no parameter 'n_layer' (given int 3); did you mean 'n_layers'? "
        "(parameters: n_layers, activation, device)"
    )
    message = _error(lambda: setattr(CNN(), "activaton", "tanh"))
    assert message == (
        "CNN has no parameter 'activaton' (given str 'tanh'); did you mean 'activation'?; "
        "use a name starting with '_' for other attributes"
    )
    assert "did you mean" not in _error(lambda: CNN(zzz=1))


def test_positional_arguments_are_rejected() -> None:
    assert _error(lambda: CNN(3)) == (
        "CNN takes keyword arguments only, got 1 positional; write CNN(name=value, ...) "
        "(parameters: n_layers, activation, device)"
    )


def test_missing_required_is_reported_on_use_identifier_and_check() -> None:
    cfg = Required(sub=Sub())
    expected = (
        "Required.size (int) is required but was not set: pass size=... when building Required"
    )
    assert _error(lambda: cfg.size) == expected
    assert _error(cfg.__identifier__) == expected
    assert _error(lambda: check_required(cfg)) == expected
    # Nested: the innermost configuration is named.
    holder = Holder(inner=Required(size=1))
    assert _error(holder.__identifier__) == (
        "Required.sub (Sub) is required but was not set: pass sub=... when building Required"
    )
    assert _error(lambda: check_required(holder)).startswith("Required.sub (Sub) is required")
    holder.inner.sub = Sub()
    check_required(holder)
    assert len(holder.__identifier__().hex) == 64


def test_constant_cannot_be_changed() -> None:
    assert Versioned(version=3).version == 3
    assert _error(lambda: Versioned(version=4)) == (
        "Versioned.version is a Constant equal to 3; it cannot be set to 4"
    )
    assert _error(lambda: Versioned(version=True)).startswith("Versioned.version: expected int")


class NoValue(Config):
    version: Constant[int]


class BadDefault(Config):
    x: Param[list[int]] = [1, "two"]


class BadType(Config):
    x: Param[set[int]] = field(default_factory=set)


class BadKeys(Config):
    x: Param[dict[int, int]] = field(default_factory=dict)


def test_constant_needs_a_value() -> None:
    assert _error(lambda: NoValue.__xpm__) == (
        "NoValue.version: a Constant needs a value (write `version: Constant[...] = value`)"
    )


def test_bad_declarations_are_reported() -> None:
    assert _error(lambda: BadDefault.__xpm__) == (
        "BadDefault.x[1]: the default must be int, got str 'two'"
    )
    assert _error(lambda: BadType()).startswith("BadType.x: unsupported type set[int]: use bool")
    assert _error(lambda: BadKeys()).startswith("BadKeys.x: dict keys must be str")


def test_frozen_configs_refuse_assignment() -> None:
    cfg = AllTypes(sub=Sub())
    cfg.__xpm_freeze__()
    assert _error(lambda: setattr(cfg, "count", 1)).startswith(
        "cannot set AllTypes.count: the configuration is frozen"
    )
    assert _error(lambda: setattr(cfg.sub, "a", 1)).startswith(
        "cannot set Sub.a: the configuration"
    )


# --- documentation ---------------------------------------------------------------------------


def test_attribute_and_class_docs() -> None:
    params = CNN.__xpm__.params
    assert params["n_layers"].doc == "Number of layers"
    assert params["activation"].doc == "Activation function,\non two lines"
    assert params["device"].doc is None
    assert CNN.__xpm__.doc == "A convolutional network.\n\nSecond paragraph of the class doc."


def test_describe_lists_kind_type_default_and_doc() -> None:
    text = describe(CNN)
    assert text.splitlines() == [
        f"{__name__}.CNN  (type id: {__name__}.cnn)",
        "",
        "  A convolutional network.",
        "  ",
        "  Second paragraph of the class doc.",
        "",
        "  n_layers: Param[int] = 2",
        "      Number of layers",
        "  activation: Param[str] = 'relu'",
        "      Activation function,",
        "      on two lines",
        "  device: Meta[str] = 'cpu'",
    ]
    required = describe(Required)
    assert "  size: Param[int]  (required)" in required.splitlines()
    assert "  version: Constant[int] = 3" in describe(Versioned).splitlines()
    assert "  sub: Param[Sub] = Sub()" in describe(AllTypes).splitlines()
    assert "  out: Meta[Path] = PathGenerator('model.pth')" in describe(WithOutput).splitlines()
    assert "(no parameters)" in describe(Config)
