"""About thirty representative configurations whose identifiers are frozen in golden/identifiers.json.

Every value kind of the canonical encoding appears at least once (see docs/identifiers.md).
Never edit a class or a value here without regenerating the golden file *and* writing a
migration note: the point of the file is that identifiers do not change by accident.

Regenerate (only when the encoding changes on purpose)::

    python tests/golden_configs.py --write
"""

from __future__ import annotations

import enum
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from xpm import Config, Constant, Meta, Param, PathGenerator, field
from xpm._task import Task, mark_outputs

GOLDEN = Path(__file__).parent / "golden" / "identifiers.json"


class Activation(enum.Enum):
    RELU = "relu"
    TANH = "tanh"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Empty(Config):
    """No parameter at all."""


class CNN(Config):
    """The seed tutorial's configuration."""

    n_layers: Param[int] = 2
    """Number of layers"""
    activation: Param[str] = "relu"
    device: Meta[str] = "cpu"


class Scalars(Config):
    flag: Param[bool] = False
    count: Param[int] = 0
    rate: Param[float] = 0.0
    name: Param[str] = ""


class Anything(Config):
    value: Param[Any] = None


class Paths(Config):
    path: Param[Path] = Path("data")
    out: Param[Path] = field(default_factory=PathGenerator("model.pth"))


class Enums(Config):
    activation: Param[Activation] = Activation.RELU
    level: Param[Level] = Level.LOW


class Optionals(Config):
    maybe: Param[Optional[int]] = None  # noqa: UP045 (typing.Optional is part of the API)
    either: Param[int | str] = 0


class Containers(Config):
    ints: Param[list[int]] = field(default_factory=list)
    pair: Param[tuple[int, str]] = (0, "")
    many: Param[tuple[float, ...]] = ()
    table: Param[dict[str, float]] = field(default_factory=dict)


class Versioned(Config):
    __xpmid__ = "golden.versioned"
    version: Constant[int] = 1
    x: Param[int] = 0


class Nested(Config):
    cnn: Param[CNN]
    lr: Param[float] = 0.1


class Ensemble(Config):
    members: Param[list[CNN]] = field(default_factory=list)
    by_name: Param[dict[str, CNN]] = field(default_factory=dict)


class Deep(Config):
    child: Param[Optional[Deep]] = None  # noqa: UP045
    depth: Param[int] = 0


class Outer(Config):
    class Inner(Config):
        x: Param[int] = 0

    inner: Param[Inner] = field(default_factory=Inner)


class Train(Task):
    """A task whose output is a model configuration."""

    model: Param[CNN]
    epochs: Param[int] = 10

    def task_outputs(self, dep: Callable[[Any], Any]) -> Any:
        return dep(CNN(n_layers=self.model.n_layers))


def _deep(levels: int) -> Deep:
    node = Deep(depth=0)
    for depth in range(1, levels + 1):
        node = Deep(child=node, depth=depth)
    return node


def _task_output() -> Config:
    task = Train(model=CNN(n_layers=4), epochs=3)
    return mark_outputs(task, task.task_outputs(lambda x: x))  # type: ignore[no-any-return]


def configurations() -> dict[str, Callable[[], Config]]:
    """Name -> builder of each golden configuration (builders: fresh objects every time)."""
    return {
        "empty": Empty,
        "cnn_default": CNN,
        "cnn_layers_3": lambda: CNN(n_layers=3),
        "cnn_tanh_meta_gpu": lambda: CNN(activation="tanh", device="cuda"),
        "scalars_default": Scalars,
        "scalars_set": lambda: Scalars(flag=True, count=-(2**70), rate=1e-300, name="é/ü 你好"),
        "float_nan": lambda: Scalars(rate=math.nan),
        "float_inf": lambda: Scalars(rate=-math.inf),
        "float_negative_zero": lambda: Scalars(rate=-0.0, count=1),
        "any_true": lambda: Anything(value=True),
        "any_1": lambda: Anything(value=1),
        "any_1_0": lambda: Anything(value=1.0),
        "any_str_1": lambda: Anything(value="1"),
        "any_mixed_list": lambda: Anything(value=[None, False, 1, 1.5, "x", (2,), {"k": []}]),
        "paths": lambda: Paths(path=Path("/data/mnist")),
        "paths_relative": lambda: Paths(path="runs/a b"),
        "enums": lambda: Enums(activation=Activation.TANH, level=Level.HIGH),
        "optional_set": lambda: Optionals(maybe=5, either="five"),
        "containers": lambda: Containers(
            ints=[3, 1, 2], pair=(7, "seven"), many=(0.5, 2), table={"b": 2.0, "a": 1.0}
        ),
        "containers_empty_set": lambda: Containers(ints=[], table={}),
        "versioned": Versioned,
        "versioned_x": lambda: Versioned(x=5),
        "nested": lambda: Nested(cnn=CNN(n_layers=5)),
        "nested_default_child": lambda: Nested(cnn=CNN(), lr=0.01),
        "ensemble": lambda: Ensemble(
            members=[CNN(), CNN(n_layers=3)],
            by_name={"small": CNN(n_layers=1), "big": CNN(n_layers=8)},
        ),
        "deep_5": lambda: _deep(5),
        "outer_inner": lambda: Outer(inner=Outer.Inner(x=1)),
        "task": lambda: Train(model=CNN(n_layers=4), epochs=3),
        "task_output": _task_output,
        "any_dict_of_configs": lambda: Anything(value={"z": Empty(), "a": [CNN(), None]}),
    }


def identifiers() -> dict[str, str]:
    """Name -> hex identifier of every golden configuration, computed now."""
    return {name: build().__identifier__().hex for name, build in configurations().items()}


def main(argv: list[str]) -> None:
    ids = identifiers()
    if argv == ["--write"]:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(ids, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(ids)} identifiers to {GOLDEN}")
    else:
        print(json.dumps(ids))


if __name__ == "__main__":
    main(sys.argv[1:])
