"""Experiment YAML files: inheritance, overrides, conversion, and every error message (CliRunner)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_cli_run import clean_env, write_project

from xpm.cli import cli
from xpm.errors import ConfigError, UsageError
from xpm.experiments import (
    DEFAULT_WORKDIR,
    configuration,
    load_yaml,
    prepare,
    resolve_workdir,
)
from xpm.experiments._configuration import ConversionError, build


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in tmp_path, without XPM_* variables; forget imported experiment modules after."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in list(__import__("os").environ) if k.startswith("XPM_")]:
        monkeypatch.delenv(key)
    modules = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", "")).startswith(str(tmp_path)):
            del sys.modules[name]  # the experiment modules of this test
    sys.path[:] = path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    """The one error line; fails if there is more on stderr or anything on stdout."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def assert_nothing_written(tmp_path: Path) -> None:
    written = [p for p in tmp_path.rglob("*") if p.is_dir() and p.name in ("jobs", "experiments")]
    assert written == []
    assert not (tmp_path / DEFAULT_WORKDIR).exists()
    assert not (tmp_path / "project" / DEFAULT_WORKDIR).exists()


# --------------------------------------------------------------------------- error messages


def test_unknown_key_suggests_the_closest(project: Path, tmp_path: Path) -> None:
    (project / "typo.yaml").write_text("parent: debug.yaml\nn_layer: [3]\n")
    result = invoke("run-experiment", str(project / "typo.yaml"))
    assert result.exit_code == 2
    assert error_line(result) == (
        f"xpm: error: {project / 'typo.yaml'}: unknown key 'n_layer' for Configuration; "
        "did you mean 'n_layers'? (valid keys: data, epochs, fail, model, n_layers, note)"
    )
    nested = invoke("run-experiment", "-c", "model.dropuot=0.2", str(project / "debug.yaml"))
    assert nested.exit_code == 2
    assert error_line(nested) == (
        "xpm: error: -c model.dropuot=0.2: unknown key 'model.dropuot' for Model; "
        "did you mean 'dropout'? (valid keys: activation, dropout)"
    )
    assert_nothing_written(tmp_path)


def test_wrong_type_names_the_file_that_set_it(project: Path, tmp_path: Path) -> None:
    (project / "base.yaml").write_text(
        (project / "base.yaml").read_text().replace("dropout: 0.5", "dropout: high")
    )
    (project / "debug.yaml").write_text("parent: base.yaml\nepochs: '3'\n")
    result = invoke("run-experiment", str(project / "debug.yaml"))
    assert result.exit_code == 2
    assert error_line(result) == (
        f"xpm: error: {project / 'debug.yaml'}: key 'epochs': expected int, got str '3'; "
        "write it without quotes"
    )
    (project / "debug.yaml").write_text("parent: base.yaml\n")
    result = invoke("run-experiment", str(project / "debug.yaml"))
    assert error_line(result) == (
        f"xpm: error: {project / 'base.yaml'}: key 'model.dropout': expected float, got str 'high'"
    )
    enum_value = invoke("run-experiment", "-c", "model.activation=gelu", str(project / "base.yaml"))
    assert error_line(enum_value) == (
        "xpm: error: -c model.activation=gelu: key 'model.activation': "
        "expected Act (one of relu, tanh), got str 'gelu'"
    )
    item = invoke("run-experiment", "-c", "n_layers=[3, x]", str(project / "base.yaml"))
    assert error_line(item) == (
        "xpm: error: -c n_layers=[3, x]: key 'n_layers[1]': expected int, got str 'x'"
    )
    assert_nothing_written(tmp_path)


def test_missing_required_keys_listed(project: Path, tmp_path: Path) -> None:
    (project / "bare.yaml").write_text("file: experiment\n")
    result = invoke("run-experiment", str(project / "bare.yaml"))
    assert result.exit_code == 2
    assert error_line(result) == (
        f"xpm: error: {project / 'bare.yaml'}: missing required keys for Configuration: "
        "epochs (int), n_layers (list[int]); set them in the YAML or with -c KEY=VALUE"
    )
    assert_nothing_written(tmp_path)


def test_parent_cycle_and_missing_parent(project: Path, tmp_path: Path) -> None:
    (project / "a.yaml").write_text("parent: [base.yaml, b.yaml]\n")
    (project / "b.yaml").write_text("parent: sub/../a.yaml\n")
    (project / "sub").mkdir()
    result = invoke("run-experiment", str(project / "a.yaml"))
    assert result.exit_code == 2
    a, b = project / "a.yaml", project / "b.yaml"
    assert error_line(result) == (
        f"xpm: error: parent cycle: {a} -> {b} -> {project / 'sub' / '..' / 'a.yaml'}; "
        "remove one of these 'parent:' keys"
    )
    (project / "c.yaml").write_text("parent: nowhere.yaml\n")
    missing = invoke("run-experiment", str(project / "c.yaml"))
    assert missing.exit_code == 2
    assert error_line(missing) == (
        f"xpm: error: {project / 'c.yaml'}: parent {project / 'nowhere.yaml'} not found; "
        "fix the 'parent:' path (relative to the YAML that names it)"
    )
    assert_nothing_written(tmp_path)


def test_missing_file_and_bad_yaml(project: Path, tmp_path: Path) -> None:
    result = invoke("run-experiment", "nope.yaml")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"xpm: error: {tmp_path / 'nope.yaml'}: no such file; "
        "give the path of an experiment YAML file"
    )
    (project / "broken.yaml").write_text("file: experiment\nn_layers: [3\n")
    broken = invoke("run-experiment", str(project / "broken.yaml"))
    assert broken.exit_code == 2
    assert error_line(broken).startswith(
        f"xpm: error: {project / 'broken.yaml'}: invalid YAML at line 3, column 1: "
    )
    (project / "dup.yaml").write_text("file: experiment\nepochs: 1\nepochs: 2\n")
    dup = invoke("run-experiment", str(project / "dup.yaml"))
    assert error_line(dup) == (
        f"xpm: error: {project / 'dup.yaml'}: invalid YAML at line 3, column 1: "
        "duplicate key 'epochs'"
    )
    (project / "list.yaml").write_text("- 1\n- 2\n")
    top = invoke("run-experiment", str(project / "list.yaml"))
    assert error_line(top) == (
        f"xpm: error: {project / 'list.yaml'}: expected a mapping of keys (epochs: 10, ...), "
        "got list"
    )
    assert_nothing_written(tmp_path)


def test_bad_override_syntax(project: Path, tmp_path: Path) -> None:
    for option in ("epochs", "=3", "a b=3", "model..x=1"):
        result = invoke("run-experiment", "-c", option, str(project / "debug.yaml"))
        assert result.exit_code == 2, option
        assert error_line(result) == (
            f"xpm: error: -c {option!r}: expected KEY=VALUE with KEY a name or dotted path "
            "(e.g. -c epochs=10 or -c model.n_layers=[3,4])"
        )
    into_scalar = invoke("run-experiment", "-c", "epochs.x=1", str(project / "debug.yaml"))
    assert error_line(into_scalar) == (
        "xpm: error: -c epochs.x=1: 'epochs' is not a mapping (it is 3); "
        "set 'epochs' itself or fix the YAML"
    )
    parent = invoke("run-experiment", "-c", "parent=base.yaml", str(project / "debug.yaml"))
    assert error_line(parent) == (
        "xpm: error: -c parent=base.yaml: 'parent' cannot be overridden; set it in the YAML"
    )
    assert_nothing_written(tmp_path)


def test_unknown_run_mode(project: Path, tmp_path: Path) -> None:
    result = invoke("run-experiment", "--run-mode", "fast", str(project / "debug.yaml"))
    assert result.exit_code == 2
    assert "Invalid value for '--run-mode': 'fast' is not one of" in result.stderr
    (project / "mode.yaml").write_text("parent: debug.yaml\nrun_mode: dryrun\n")
    in_yaml = invoke("run-experiment", str(project / "mode.yaml"))
    assert in_yaml.exit_code == 2
    assert error_line(in_yaml) == (
        f"xpm: error: {project / 'mode.yaml'}: run_mode 'dryrun' is not one of normal, "
        "generate, dry-run; did you mean 'dry-run'?"
    )
    assert_nothing_written(tmp_path)


def test_dirty_git_in_yaml(project: Path, tmp_path: Path) -> None:
    (project / "dirty.yaml").write_text("parent: debug.yaml\ndirty_git: sometimes\n")
    bad = invoke("run-experiment", str(project / "dirty.yaml"))
    assert bad.exit_code == 2
    assert error_line(bad) == (
        f"xpm: error: {project / 'dirty.yaml'}: dirty_git 'sometimes' is not one of "
        "ignore, warn, error"
    )
    assert_nothing_written(tmp_path)
    from xpm.experiments._loader import prepare

    (project / "dirty.yaml").write_text("parent: debug.yaml\ndirty_git: error\n")
    assert prepare(project / "dirty.yaml").source.dirty_git == "error"


def test_module_problems(project: Path, tmp_path: Path) -> None:
    (project / "nofile.yaml").write_text("file: missing\nepochs: 1\n")
    nofile = invoke("run-experiment", str(project / "nofile.yaml"))
    assert nofile.exit_code == 2
    assert error_line(nofile) == (
        f"xpm: error: {project / 'nofile.yaml'}: file: 'missing': no such file "
        f"{project / 'missing.py'}; name a Python file beside the YAML (without .py)"
    )
    (project / "nomodule.yaml").write_text("module: no_such_pkg.exp\n")
    nomodule = invoke("run-experiment", str(project / "nomodule.yaml"))
    assert nomodule.exit_code == 2
    assert error_line(nomodule).startswith(
        f"xpm: error: {project / 'nomodule.yaml'}: module: 'no_such_pkg.exp' cannot be found"
    )
    (project / "nokey.yaml").write_text("epochs: 1\n")
    nokey = invoke("run-experiment", str(project / "nokey.yaml"))
    assert error_line(nokey).startswith(
        f"xpm: error: {project / 'nokey.yaml'}: no 'file:' or 'module:' key"
    )
    (project / "norun.py").write_text("X = 1\n")
    (project / "norun.yaml").write_text("file: norun\n")
    norun = invoke("run-experiment", str(project / "norun.yaml"))
    assert error_line(norun) == (
        f"xpm: error: {project / 'norun.yaml'}: {project / 'norun.py'} has no function "
        "run(helper, cfg); define it in the module"
    )
    assert_nothing_written(tmp_path)


def test_failed_jobs_exit_1(project: Path, tmp_path: Path) -> None:
    result = invoke(
        "run-experiment", "-c", "fail=true", "-c", "n_layers=[]", str(project / "debug.yaml")
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "xpm: error: 1 job(s) of experiment 'debug' failed; see the logs above"
    )
    assert "RuntimeError: boom" in result.stderr  # the failure reason from the summary


def test_bad_spec_exit_2_with_column(tmp_path: Path) -> None:
    result = invoke("launchers", "find", "cuda(mem=16G * 2")
    assert result.exit_code == 2
    assert error_line(result).startswith("xpm: error: spec error at column 14: ")


def test_launchers_find_and_list_with_a_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (workdir / "launchers.yaml").write_text(
        "hosts:\n"
        "  - {name: laptop, type: local, cpus: 4, memory: 8G}\n"
        "  - name: gpu\n    type: slurm\n    partition: gpu\n    cpus: 32\n    memory: 256G\n"
        "    accelerators: [{type: cuda, memory: 32G, count: 4}]\n    max_duration: 2 days\n"
    )
    found = invoke(
        "launchers", "find", "--workdir", str(workdir), "cuda(mem=16G) * 2 | cpu(cores=2)"
    )
    assert found.exit_code == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0] == "SlurmLauncher on gpu (alternative 1: cuda(mem=16G) * 2)"
    assert "  partition: gpu" in lines
    assert "  gpus: 2" in lines
    assert "  laptop: needs 2 cuda GPUs with 16G, has 0" in found.stdout
    nofit = invoke("launchers", "find", "--workdir", str(workdir), "cpu(cores=64)")
    assert nofit.exit_code == 1
    assert nofit.stdout.startswith("no launcher fits")
    as_json = invoke(
        "launchers", "find", "--workdir", str(workdir), "--format", "json", "cpu(cores=2)"
    )
    import json

    data = json.loads(as_json.stdout)
    assert data["match"]["launcher"] == "LocalLauncher"
    assert data["match"]["host"] == "laptop"
    as_csv = invoke(
        "launchers", "find", "--workdir", str(workdir), "--format", "csv", "cpu(cores=8)"
    )
    assert as_csv.stdout.splitlines() == [
        "alternative,requirement,host,fits,chosen,reasons",
        '1,cpu(cores=8),laptop,False,False,"needs 8 cores, has 4"',
        "1,cpu(cores=8),gpu,True,True,",
    ]
    monkeypatch.setenv("XPM_WORKDIR", str(workdir))
    listed = invoke("launchers", "list", "--format", "csv")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[0].startswith("name,type,settings,cores,memory")
    assert [line.split(",")[0] for line in listed.stdout.splitlines()[1:]] == ["laptop", "gpu"]
    assert f"hosts from {workdir / 'launchers.yaml'}" in listed.stderr
    table = invoke("launchers", "list")
    assert table.stdout.splitlines()[0].split() == [
        "name",
        "type",
        "settings",
        "cores",
        "memory",
        "accelerators",
        "max_duration",
        "priority",
        "tags",
    ]


def test_describe_errors(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    missing = invoke("describe", "nowhere:Thing")
    assert missing.exit_code == 2
    assert error_line(missing) == (
        f"xpm: error: no module named 'nowhere' (looked in {project} and on sys.path); "
        "run xpm from the directory that holds it, or install it"
    )
    typo = invoke("describe", "experiment:Trian")
    assert typo.exit_code == 2
    assert "has no 'Trian'; did you mean 'Train'?" in error_line(typo)
    listed = error_line(typo).split("(classes: ")[1].rstrip(")").split(", ")
    assert "Train" in listed and "Config" not in listed and "Task" not in listed  # not imports
    syntax = invoke("describe", "experiment")
    assert error_line(syntax) == (
        "xpm: error: 'experiment': expected MODULE:CLASS (e.g. xpm describe experiment:Learn)"
    )
    not_config = invoke("describe", "experiment:Act")
    assert error_line(not_config) == (
        "xpm: error: experiment:Act is neither an xpm Config/Task nor a @configuration class"
    )
    ok = invoke("describe", "experiment:Model")
    assert ok.exit_code == 0
    assert "activation: Act = relu" in ok.stdout


def test_dirty_git_error_refuses_a_modified_experiment_module(
    project: Path, tmp_path: Path
) -> None:
    from xpm.experiments._helper import supports_dirty_git

    assert supports_dirty_git()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=project, check=True)
    with open(project / "experiment.py", "a", encoding="utf-8") as fh:
        fh.write("# changed\n")
    result = invoke("run-experiment", "--dirty-git", "error", str(project / "debug.yaml"))
    assert result.exit_code == 2
    assert "has uncommitted changes: experiment.py" in error_line(result)
    assert_nothing_written(tmp_path)
    # The module's repository is the one recorded (not the xpm script's).
    ok = invoke("run-experiment", "--run-mode", "generate", str(project / "debug.yaml"))
    assert ok.exit_code == 0, ok.stderr
    assert "experiment.py" in ok.stderr  # the dirty-tree warning names the changed file


# --------------------------------------------------------------------------- library


def test_parents_merge_in_order(project: Path) -> None:
    (project / "p1.yaml").write_text("file: experiment\nepochs: 1\nn_layers: [1]\nnote: p1\n")
    (project / "p2.yaml").write_text("epochs: 2\nmodel: {dropout: 0.3}\n")
    (project / "sub").mkdir()
    (project / "sub" / "child.yaml").write_text(
        "parent: [../p1.yaml, ../p2.yaml]\nnote: child\nid: kid\nworkdir: out\n"
    )
    source = load_yaml(project / "sub" / "child.yaml")
    assert source.values == {
        "epochs": 2,
        "n_layers": [1],
        "note": "child",
        "model": {"dropout": 0.3},
    }
    assert source.name == "kid"
    assert source.module_file == project / "sub" / ".." / "experiment.py"
    assert source.workdir == project / "sub" / "out"
    assert source.origin("epochs") == str(project / "sub" / ".." / "p2.yaml")
    assert source.origin("model.dropout") == str(project / "sub" / ".." / "p2.yaml")
    assert source.origin("n_layers[0]") == str(project / "sub" / ".." / "p1.yaml")
    prepared = prepare(project / "sub" / "child.yaml", overrides=["note=123", "model.dropout=1"])
    assert prepared.config.note == "123"  # a str field gets the text of -c note=123
    assert prepared.config.model.dropout == 1.0
    assert type(prepared.config.model.dropout) is float
    assert prepared.name == "kid"
    assert prepared.run_mode == "normal"
    assert prepared.workdir == (project / "sub" / "out").absolute()


def test_workdir_resolution_order(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#19: --workdir, then the YAML's workdir:, then $XPM_WORKDIR, then xpm-workdir at the
    YAML's git root, else beside the YAML (never the current directory)."""
    source = load_yaml(project / "debug.yaml")
    assert resolve_workdir(None, source) == project / DEFAULT_WORKDIR
    monkeypatch.setenv("XPM_WORKDIR", "from-env")
    assert resolve_workdir(None, source) == tmp_path / "from-env"
    source.workdir = project / "wd"
    assert resolve_workdir(None, source) == project / "wd"
    assert resolve_workdir("given", source) == tmp_path / "given"
    monkeypatch.delenv("XPM_WORKDIR")
    source.workdir = None
    (tmp_path / ".git").mkdir()  # the repository's root is found without running git
    assert resolve_workdir(None, source) == tmp_path / DEFAULT_WORKDIR


class Color(Enum):
    red = 1
    blue = 2


@configuration
class Inner:
    size: int = 1


@configuration
class Everything:
    flag: bool
    ratio: float
    path: Path
    color: Color
    maybe: int | None = None
    pair: tuple[int, str] = (0, "")
    weights: dict[str, float] = dataclasses.field(default_factory=dict)
    inners: list[Inner] = dataclasses.field(default_factory=list)
    inner: Inner | None = None


def test_conversion_of_every_supported_type() -> None:
    cfg = build(
        Everything,
        {
            "flag": True,
            "ratio": 2,
            "path": "a/b",
            "color": "blue",
            "maybe": None,
            "pair": [3, "x"],
            "weights": {"a": 1},
            "inners": [{"size": 2}, {}],
            "inner": {"size": 5},
        },
    )
    assert cfg == Everything(
        flag=True,
        ratio=2.0,
        path=Path("a/b"),
        color=Color.blue,
        maybe=None,
        pair=(3, "x"),
        weights={"a": 1.0},
        inners=[Inner(size=2), Inner()],
        inner=Inner(size=5),
    )
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"flag": "yes"}, "flag", "expected bool, got str 'yes'"),
        ({"pair": [1]}, "pair", "expected tuple[int, str] (2 items)"),
        ({"inners": [{"size": "x"}]}, "inners[0].size", "expected int, got str 'x'"),
        ({"inners": [{"sise": 1}]}, "inners[0].sise", "did you mean 'size'?"),
        ({"weights": {"a": "b"}}, "weights['a']", "expected float, got str 'b'"),
        ({"maybe": 1.5}, "maybe", "expected int | None, got float 1.5"),
    ]
    base = {"flag": True, "ratio": 1.0, "path": "p", "color": "red"}
    for change, path, message in cases:
        with pytest.raises(ConversionError) as caught:
            build(Everything, {**base, **change})
        assert caught.value.path == path, change
        assert message in caught.value.message, change


def test_configuration_rejects_reserved_names_and_mutable_defaults() -> None:
    with pytest.raises(ConfigError, match="'id' is a reserved YAML key"):

        @configuration
        class WithId:
            id: str = "x"

    with pytest.raises(ConfigError, match="default_factory"):

        @configuration
        class Mutable:
            items: list[int] = []  # noqa: RUF012


def test_override_values_are_yaml() -> None:
    from xpm.experiments import parse_override

    assert parse_override("n=[3, 4]")[1].parsed == [3, 4]
    assert parse_override("x=1e-3")[1].parsed == 0.001  # YAML 1.2 (PyYAML alone: a string)
    assert parse_override("x=-2E+5")[1].parsed == -2e5
    assert parse_override("x=0.001")[1].parsed == 0.001
    assert parse_override("flag=true")[1].parsed is True
    assert parse_override("s=a: b")[1].parsed == "a: b"
    assert parse_override("d={a: 1}")[1].parsed == {"a": 1}
    assert parse_override("s=- a")[1].parsed == "- a"
    assert parse_override("s=[3")[1].parsed == "[3"
    assert parse_override("s=2024-01-01")[1].parsed == "2024-01-01"
    assert parse_override("s=")[1].parsed is None
    with pytest.raises(UsageError):
        parse_override("no-equals")


def test_help_and_experiments_import_stay_light() -> None:
    code = (
        "import sys\n"
        "import xpm.experiments\n"
        "heavy = {'yaml', 'xpm._experiment', 'xpm._scheduler'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "from xpm.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='xpm')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'yaml', 'tabulate', 'xpm._experiment', 'xpm._scheduler', 'sqlite_utils',\n"
        "         'git', 'xpm.launchers.local'} & set(sys.modules)\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_a_config_error_in_run_names_the_line_of_the_users_code(tmp_path: Path) -> None:
    """#19: a wrong parameter in the user's own run() was one line without a location."""
    (tmp_path / "wrongvalue.py").write_text(
        "from xpm import Param, Task\n"
        "from xpm.experiments import ExperimentHelper, configuration\n"
        "\n"
        "\n"
        "class Train(Task):\n"
        "    n: Param[int]\n"
        "\n"
        "\n"
        "@configuration\n"
        "class Configuration:\n"
        "    n: int = 1\n"
        "\n"
        "\n"
        "def run(helper: ExperimentHelper, cfg: Configuration) -> None:\n"
        '    Train(n="three").submit()\n'
    )
    (tmp_path / "wrong.yaml").write_text("file: wrongvalue\n")
    result = invoke("run-experiment", "--run-mode", "dry-run", "wrong.yaml")
    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"xpm: error: Train.n: expected int, got str 'three' (at {tmp_path / 'wrongvalue.py'}:15)"
    )
