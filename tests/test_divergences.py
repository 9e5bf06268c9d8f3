"""Where xpm matches experimaestro on purpose (issue #14, point 8); the divergences that stay
are documented in docs/from-experimaestro.md (its snippets run in tests/test_docs.py)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from xpm_test_tasks import Count, Learn, Model

from xpm import Config, Constant, Meta, Param, Task, field, tag, tags_of, tagspath
from xpm._experiment import experiment
from xpm._identifier import encode_config
from xpm._types import narrows
from xpm.errors import ConfigError, UsageError
from xpm.experiments import prepare, run_experiment_file
from xpm.index import open_index

# --------------------------------------------------------------------------- Optional -> None


class Opt(Config):
    __xpmid__ = "divergences.opt"
    x: Param[int] = 1
    maybe: Param[Optional[int]]  # noqa: UP045 (the spelling experimaestro users write)
    other: Param[str | None]
    where: Meta[Optional[Path]]  # noqa: UP045


class OptDefault(Config):
    __xpmid__ = "divergences.opt"  # the same type id: the same identifiers expected
    x: Param[int] = 1
    maybe: Param[Optional[int]] = None  # noqa: UP045
    other: Param[str | None] = None


class Bare(Config):
    __xpmid__ = "divergences.opt"  # the class before the Optional parameters were added
    x: Param[int] = 1


def test_an_optional_parameter_without_default_defaults_to_none() -> None:
    cfg = Opt()
    assert (cfg.maybe, cfg.other, cfg.where) == (None, None, None)
    # None is the implied default: skipped like `= None`, so adding an Optional parameter
    # keeps the identifiers of existing configurations, and an explicit None changes nothing.
    assert encode_config(Opt()) == encode_config(Bare()) == encode_config(OptDefault())
    assert Opt(maybe=None).__identifier__() == Bare().__identifier__()
    assert Opt(maybe=3).__identifier__() == OptDefault(maybe=3).__identifier__()
    assert Opt(maybe=3).__identifier__() != Opt().__identifier__()
    assert not Opt.__xpm__.params["maybe"].required


def test_a_non_optional_parameter_stays_required_and_a_constant_needs_a_value() -> None:
    class Needs(Config):
        n: Param[int]

    with pytest.raises(ConfigError, match=r"Needs\.n \(int\) is required"):
        Needs().__identifier__()
    with pytest.raises(ConfigError, match="a Constant needs a value"):

        class Fixed(Config):
            version: Constant[Optional[int]]  # noqa: UP045

        Fixed.__xpm__  # noqa: B018


# --------------------------------------------------------------------------- tags of outputs


class Fresh(Config):
    """An output that holds no tagged configuration of its own."""

    name: Param[str] = "out"


class Produce(Task):
    size: Param[int]

    def execute(self) -> None:
        pass

    def task_outputs(self, dep: Callable[[Any], Any]) -> Any:
        return {"fresh": dep(Fresh()), "list": [dep(Fresh(name="second"))]}


def test_tags_of_a_task_output_are_the_producing_task_tags(workdir: Path) -> None:
    with experiment(workdir, "tags", run_mode="generate", progress=False):
        learned = Learn(model=Model(n_layers=tag(4)), epochs=tag(2)).submit()
        outputs = Produce(size=tag(7)).submit()
        counted = Count(n=tag(5)).submit()  # no task_outputs: the task itself
    assert tags_of(learned) == {"n_layers": 4, "epochs": 2}
    assert tagspath(learned) == "epochs=2_n_layers=4"
    assert tags_of(outputs["fresh"]) == {"size": 7}
    assert tagspath(outputs["list"][0]) == "size=7"
    assert tags_of(counted) == {"n": 5}
    # Tags still never change identifiers.
    assert counted.__identifier__() == Count(n=5).__identifier__()


# --------------------------------------------------------------------------- overrides


class Base(Config):
    n: Param[int] = 1
    model: Param[Model]
    models: Param[list[Model]] = field(default_factory=list)
    maybe: Param[Optional[float]] = None  # noqa: UP045
    anything: Param[Any] = None


class SmallModel(Model):
    pass


def test_a_subclass_cannot_redeclare_a_parameter_with_an_incompatible_type() -> None:
    with pytest.raises(ConfigError) as error:

        class Wrong(Base):
            n: Param[str] = "one"

    assert str(error.value).endswith(
        ".<locals>.Wrong.n: re-declared as str, but Base declares it int; a subclass may only narrow "
        "an inherited parameter's type (e.g. to a subclass): keep int or use another "
        "parameter name"
    )
    for bad in (Param[bool], Param[list[int]], Param[Config], Param[Optional[int]]):  # noqa: UP045
        with pytest.raises(ConfigError, match=r"\.n: re-declared as"):
            type("Bad", (Base,), {"__annotations__": {"n": bad}, "n": 1})
    with pytest.raises(ConfigError, match=r"Bad\.models: re-declared as list\[int\]"):
        type("Bad", (Base,), {"__annotations__": {"models": Param[list[int]]}})


def test_a_subclass_may_narrow_a_parameter() -> None:
    class Narrow(Base):
        n: Meta[int] = 2  # the kind may change, the type stays
        model: Param[SmallModel]
        models: Param[list[SmallModel]] = field(default_factory=list)
        maybe: Param[int] = 3
        anything: Param[dict[str, int]] = field(default_factory=dict)

    assert Narrow(model=SmallModel()).maybe == 3
    with pytest.raises(ConfigError, match=r"Narrow\.model: expected a SmallModel"):
        Narrow(model=Model())


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        (list[int], list, True),
        (list, list[int], False),
        (tuple[int, int], tuple[int, ...], True),
        (tuple[int, ...], tuple[int, int], False),
        (tuple[int, ...], tuple[float, ...], True),
        (int | None, Optional[float], True),  # noqa: UP045
        (Optional[int], int, False),  # noqa: UP045
        (bool, int, False),
        (list[bool], list[int], False),
        (dict[str, SmallModel], dict[str, Model], True),
        (Any, int, False),
        (int, Any, True),
    ],
)
def test_which_types_narrow(new: Any, old: Any, expected: bool) -> None:
    assert narrows(new, old) is expected


def test_an_override_naming_a_later_class_is_checked_when_first_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "later_override.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations
            from xpm import Config, Param

            class A(Config):
                pass

            class Holder(Config):
                child: Param[A]

            class Later(Holder):
                child: Param[B]  # B is defined below: unresolvable at class definition

            class B(Config):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import later_override  # type: ignore[import-not-found]

    try:
        with pytest.raises(ConfigError, match=r"^Later\.child: re-declared as B, but Holder"):
            later_override.Later.__xpm__  # noqa: B018
    finally:
        sys.modules.pop("later_override", None)


# --------------------------------------------------------------------------- YAML title


@pytest.fixture
def yaml_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("XPM_") and k != "XPM_GIT"]:
        monkeypatch.delenv(key)
    (tmp_path / "titled_xp.py").write_text(
        textwrap.dedent(
            """
            from xpm.experiments import configuration

            @configuration
            class Configuration:
                epochs: int = 1

            def run(helper, cfg: Configuration) -> None:
                print("title:", helper.title, "description:", helper.description)
            """
        )
    )
    path = list(sys.path)
    yield tmp_path
    sys.modules.pop("titled_xp", None)
    sys.path[:] = path


def test_yaml_title_and_description_are_recorded_with_the_run(
    yaml_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (yaml_project / "base.yaml").write_text(
        "file: titled_xp\ntitle: Baseline\ndescription: |\n  First try.\n  Two lines.\n"
    )
    (yaml_project / "child.yaml").write_text("parent: base.yaml\nepochs: 3\n")
    xp = run_experiment_file(yaml_project / "child.yaml", overrides=["title=Longer run"])
    assert "title: Longer run description: First try.\nTwo lines.\n" in capsys.readouterr().out
    (record,) = (xp.run_dir / "runs").glob("*.json")
    data = json.loads(record.read_text())
    assert (data["title"], data["description"]) == ("Longer run", "First try.\nTwo lines.\n")
    with open_index(xp.workdir, readonly=True) as index:
        (info,) = [json.loads(row[0]) for row in index.query("SELECT info FROM runs")]
    assert info["title"] == "Longer run"


def test_yaml_title_goes_to_a_configuration_field_of_that_name(yaml_project: Path) -> None:
    (yaml_project / "own_title.py").write_text(
        "from xpm.experiments import configuration\n\n"
        "@configuration\nclass Configuration:\n    title: int = 0\n\n"
        "def run(helper, cfg: Configuration) -> None:\n    pass\n"
    )
    (yaml_project / "own.yaml").write_text("file: own_title\ntitle: 5\n")
    try:
        prepared = prepare(yaml_project / "own.yaml")
        assert prepared.config.title == 5 and prepared.description == {}
    finally:
        sys.modules.pop("own_title", None)


def test_a_yaml_title_must_be_text(yaml_project: Path) -> None:
    (yaml_project / "bad.yaml").write_text("file: titled_xp\ntitle: [1, 2]\n")
    with pytest.raises(UsageError) as error:
        prepare(yaml_project / "bad.yaml")
    assert str(error.value) == (
        f"{yaml_project / 'bad.yaml'}: 'title' is recorded with the run and must be text, "
        "got [1, 2]; quote it"
    )


# --------------------------------------------------------------------------- documented


def test_identifiers_follow_task_outputs_not_paths_into_the_workdir(tmp_path: Path) -> None:
    """docs/from-experimaestro.md: a task output keeps its consumer's identifier when the
    workdir moves; the same output's path passed as a plain Param[Path] does not."""

    class ReadsPath(Config):
        weights: Param[Path]

    found = []
    for name in ("here", "moved"):
        with experiment(tmp_path / name, "xp", run_mode="generate", progress=False):
            learned = Learn(model=Model(n_layers=2), epochs=1).submit()
        found.append((learned.__identifier__(), ReadsPath(weights=learned.path).__identifier__()))
    (output_here, path_here), (output_moved, path_moved) = found
    assert output_here == output_moved
    assert path_here != path_moved


def test_every_divergence_that_stays_is_documented() -> None:
    page = (Path(__file__).parent.parent / "docs" / "from-experimaestro.md").read_text()
    section = page.split("## Divergences that stay", 1)[1].split("\n## ", 1)[0]
    for subject in ("`Param[Path]`", "before it is submitted", "`ConfigurationBase`", "run_mode"):
        assert subject in section, subject
    assert "`submit(run_mode=...)`" in section and "`cfg.id` is `helper.name`" in section
