"""The real ``xpm`` executable, end to end: run-experiment from YAML in every run mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xpm._jobdir import iter_job_dirs

EXPERIMENT_PY = '''
from __future__ import annotations

import enum
from pathlib import Path

from xpm import Param, Task
from xpm.experiments import ExperimentHelper, configuration


class Act(enum.Enum):
    relu = 1
    tanh = 2


class Train(Task):
    """Writes result.txt from its parameters."""

    n_layers: Param[int]
    epochs: Param[int]
    activation: Param[str] = "relu"

    def execute(self) -> None:
        Path("result.txt").write_text(f"{self.n_layers} {self.epochs} {self.activation}")


class Boom(Task):
    """Always fails."""

    n: Param[int] = 0

    def execute(self) -> None:
        raise RuntimeError("boom")


@configuration
class Model:
    activation: Act = Act.relu
    dropout: float = 0.0


@configuration
class Configuration:
    epochs: int
    n_layers: list[int]
    model: Model = Model()
    fail: bool = False
    """Also submit a task that always fails."""
    note: str = "none"
    data: Path | None = None


def run(helper: ExperimentHelper, cfg: Configuration) -> None:
    launcher = helper.launcher("cpu(cores=1)")
    print(f"helper {helper.name} {helper.run_mode} {helper.workdir} {type(launcher).__name__}")
    print(f"cfg {cfg!r}")
    for n in cfg.n_layers:
        Train(n_layers=n, epochs=cfg.epochs, activation=cfg.model.activation.name).submit(
            launcher=launcher
        )
    if cfg.fail:
        Boom().submit()
    if cfg.note == "raise":
        raise ValueError("bad thing in run")
'''

BASE_YAML = """\
file: experiment
epochs: 2
n_layers: [1, 2]
model:
  activation: tanh
  dropout: 0.5
"""

DEBUG_YAML = """\
parent: base.yaml
epochs: 3
model:
  dropout: 0.1
"""


def write_project(path: Path) -> Path:
    """experiment.py + base.yaml + debug.yaml (inheriting base.yaml) in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "experiment.py").write_text(textwrap.dedent(EXPERIMENT_PY))
    (path / "base.yaml").write_text(BASE_YAML)
    (path / "debug.yaml").write_text(DEBUG_YAML)
    return path


def xpm_command() -> list[str]:
    """The installed ``xpm`` script, else ``python -m xpm.cli``."""
    found = shutil.which("xpm")
    return [found] if found else [sys.executable, "-m", "xpm.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_")}
    # The installed `xpm` script imports the xpm of its own install: test this checkout's.
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    env.update(extra)
    return env


def xpm(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*xpm_command(), *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def results(workdir: Path) -> dict[str, str]:
    """task id -> result.txt content, for every Train job with a result."""
    out = {}
    for jobdir in iter_job_dirs(workdir):
        result = jobdir.path / "result.txt"
        if result.exists():
            out[jobdir.identifier] = result.read_text()
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


def test_three_run_modes_with_inheritance_and_overrides(project: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    yaml_file = str(project / "debug.yaml")
    overrides = ["-c", "n_layers=[3,4]", "-c", "model.activation=relu"]

    # dry-run: the plan is printed, nothing is written (no workdir at all).
    dry = xpm("run-experiment", "--run-mode", "dry-run", *overrides, yaml_file, cwd=cwd)
    assert dry.returncode == 0, dry.stderr
    assert "helper debug dry-run" in dry.stdout
    assert "epochs=3, n_layers=[3, 4]" in dry.stdout
    assert "activation=<Act.relu: 1>, dropout=0.1" in dry.stdout  # deep merge of model:
    assert dry.stderr.count("[to run]") == 2
    assert "dry run: 2 jobs, 2 to run" in dry.stderr
    # Started from elsewhere, the default workdir is beside the YAML, not in the current
    # directory: the same jobs whatever directory the command is typed in (#19).
    default_workdir = project / "xpm-workdir"
    assert f"workdir {default_workdir} (beside the YAML)" in dry.stderr.splitlines()[0]
    assert not default_workdir.exists()
    assert not (cwd / "xpm-workdir").exists()

    # generate: job directories with params.json, nothing executed.
    gen = xpm("run-experiment", "--run-mode", "generate", *overrides, yaml_file, cwd=cwd)
    assert gen.returncode == 0, gen.stderr
    jobdirs = list(iter_job_dirs(default_workdir))
    assert len(jobdirs) == 2
    assert all(j.task_id == "experiment.train" for j in jobdirs)
    assert not any(j.is_done() for j in jobdirs)
    assert results(default_workdir) == {}
    params = json.loads(jobdirs[0].params.read_text())
    assert str(project / "experiment.py") in json.dumps(params)  # the job finds the module

    # normal: the same jobs run (job processes import experiment.py from the YAML's folder).
    run = xpm("run-experiment", *overrides, yaml_file, cwd=cwd)
    assert run.returncode == 0, run.stderr
    assert "helper debug normal" in run.stdout
    assert "LocalLauncher" in run.stdout
    assert sorted(results(default_workdir).values()) == ["3 3 relu", "4 3 relu"]
    assert {j.identifier for j in iter_job_dirs(default_workdir)} == {j.identifier for j in jobdirs}
    assert "2 done, 0 already done, 0 failed" in run.stderr
    runs = list((default_workdir / "experiments" / "debug" / "runs").glob("*.json"))
    assert len(runs) == 2  # generate + normal (dry-run writes no record)

    # Without overrides: base.yaml's n_layers, debug.yaml's epochs, base.yaml's activation.
    again = xpm("run-experiment", yaml_file, cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert sorted(results(default_workdir).values()) == [
        "1 3 tanh",
        "2 3 tanh",
        "3 3 relu",
        "4 3 relu",
    ]


def test_workdir_option_env_and_yaml(project: Path, tmp_path: Path) -> None:
    (project / "wd.yaml").write_text("parent: debug.yaml\nworkdir: runs/here\nn_layers: [5]\n")
    from_yaml = xpm("run-experiment", "wd.yaml", cwd=project)
    assert from_yaml.returncode == 0, from_yaml.stderr
    assert sorted(results(project / "runs" / "here").values()) == ["5 3 tanh"]
    assert "helper wd normal" in from_yaml.stdout  # the name is the YAML stem

    assert from_yaml.stderr.splitlines()[0] == (
        f"xpm wd: normal run, workdir {project / 'runs' / 'here'} (workdir: in "
        f"{project / 'wd.yaml'}); no launchers.yaml (local machine only)"
    )

    # $XPM_WORKDIR comes after the YAML's workdir: (the project's choice), before the default.
    env_dir = tmp_path / "from-env"
    env = clean_env(XPM_WORKDIR=str(env_dir))
    from_env = xpm("run-experiment", "--run-mode", "generate", "wd.yaml", cwd=project, env=env)
    assert from_env.returncode == 0, from_env.stderr
    assert not env_dir.exists()
    args = ["run-experiment", "--run-mode", "generate", "-c", "n_layers=[5]", "debug.yaml"]
    from_env = xpm(*args, cwd=project, env=env)
    assert from_env.returncode == 0, from_env.stderr
    assert len(list(iter_job_dirs(env_dir))) == 1
    assert f"workdir {env_dir} ($XPM_WORKDIR)" in from_env.stderr

    opt_dir = tmp_path / "from-option"
    from_option = xpm(
        "run-experiment",
        "--run-mode",
        "generate",
        "--workdir",
        str(opt_dir),
        "-c",
        "id=named",
        "wd.yaml",
        cwd=project,
        env=clean_env(XPM_WORKDIR=str(env_dir)),
    )
    assert from_option.returncode == 0, from_option.stderr
    assert len(list(iter_job_dirs(opt_dir))) == 1
    assert (opt_dir / "experiments" / "named" / "runs").is_dir()


def test_failed_jobs_exit_1(project: Path, tmp_path: Path) -> None:
    done = xpm(
        "run-experiment",
        "--workdir",
        str(tmp_path / "wd"),
        "-c",
        "fail=true",
        str(project / "debug.yaml"),
        cwd=project,
    )
    assert done.returncode == 1
    assert "1 failed" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("xpm: error: 1 job(s) of experiment 'debug' failed")
    assert "Traceback" not in done.stderr  # the job's traceback is in its log, not here
    assert len(results(tmp_path / "wd")) == 2  # the other jobs still ran


def test_an_error_in_the_users_run_is_theirs_with_their_frames(
    project: Path, tmp_path: Path
) -> None:
    """An exception from the experiment's own run() was "unexpected ValueError" (the words
    for a bug of xpm) with the line to fix hidden behind --debug."""
    args = ["run-experiment", "--run-mode", "dry-run", "-c", "note=raise", "debug.yaml"]
    plain = xpm(*args, cwd=project)
    assert plain.returncode == 1
    assert "unexpected" not in plain.stderr
    error = plain.stderr[plain.stderr.index("xpm: error: ") :].splitlines()
    assert error[0] == "xpm: error: the experiment's run() raised ValueError: bad thing in run"
    assert error[1] == "Traceback (your code, innermost last):"
    assert 'raise ValueError("bad thing in run")' in plain.stderr
    assert "xpm/experiments" not in plain.stderr  # only the user's frames
    debug = xpm("--debug", *args, cwd=project)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr  # everything, xpm's frames too
    assert "xpm/experiments" in debug.stderr


def test_python_m_and_version_and_help(tmp_path: Path) -> None:
    from xpm import __version__

    module = subprocess.run(
        [sys.executable, "-m", "xpm.cli", "--version"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert module.returncode == 0
    assert module.stdout.strip() == f"xpm {__version__}"
    helped = xpm("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in ("run-experiment", "describe", "launchers"):
        assert command in helped.stdout
    usage = xpm("run-experiment", "--max-parallel", "0", "x.yaml", cwd=tmp_path)
    assert usage.returncode == 2
    assert "--max-parallel" in usage.stderr


def test_describe_and_launchers_as_processes(project: Path) -> None:
    described = xpm("describe", "experiment:Train", cwd=project)
    assert described.returncode == 0, described.stderr
    assert "n_layers: Param[int]  (required)" in described.stdout
    assert "activation: Param[str] = 'relu'" in described.stdout
    config = xpm("describe", "experiment:Configuration", cwd=project)
    assert config.returncode == 0, config.stderr
    assert "n_layers: list[int]  (required)" in config.stdout
    # The docstring under a field is its documentation (#19: it was dropped).
    assert "  fail: bool = False\n      Also submit a task that always fails.\n" in config.stdout
    found = xpm("launchers", "find", "cpu(cores=1)", cwd=project)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("LocalLauncher on local")
    bad = xpm("launchers", "find", "cpu(cores=)", cwd=project)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("xpm: error: spec error at column 11: ")
    assert bad.stdout == ""


def test_default_workdir_is_at_the_git_root_from_anywhere(project: Path, tmp_path: Path) -> None:
    """#19: the default workdir follows the YAML's repository, not the current directory;
    `xpm jobs list` finds it from any directory of the repository."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("xpm-workdir/\n")
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=tmp_path, check=True)
    workdir = tmp_path / "xpm-workdir"
    generate = ["run-experiment", "--run-mode", "generate"]
    for cwd, yaml_file in ((tmp_path, "project/debug.yaml"), (project, "debug.yaml")):
        run = xpm(*generate, yaml_file, cwd=cwd)
        assert run.returncode == 0, run.stderr
        assert run.stderr.splitlines()[0] == (
            f"xpm debug: generate run, workdir {workdir} (at the git root); "
            "no launchers.yaml (local machine only)"
        )
    assert len(list(iter_job_dirs(workdir))) == 2  # the second run planned nothing new
    assert not (project / "xpm-workdir").exists()
    listed = xpm("jobs", "list", "--format", "json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2


LAUNCHERS_YAML = """\
hosts:
  - name: cluster
    type: slurm
    partition: debug
    cpus: 4
"""


def test_launchers_yaml_beside_the_experiment_yaml(project: Path, tmp_path: Path) -> None:
    """#19: a launchers.yaml beside the experiment YAML is used, and the first line says so;
    a spec no host fits says once that its jobs run on the local machine."""
    (project / "launchers.yaml").write_text(LAUNCHERS_YAML)
    run = xpm("run-experiment", "--run-mode", "dry-run", str(project / "debug.yaml"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "SlurmLauncher" in run.stdout  # the host of the launchers.yaml beside debug.yaml
    first = run.stderr.splitlines()[0]
    assert first.endswith(f"; hosts from {project / 'launchers.yaml'}"), first
    assert "helper.launcher() returned None" not in run.stderr

    twice = 'helper.launcher("cuda(mem=8G)") or helper.launcher("cuda(mem=8G)")'
    (project / "experiment.py").write_text(
        (project / "experiment.py").read_text().replace('helper.launcher("cpu(cores=1)")', twice)
    )
    run = xpm("run-experiment", "--run-mode", "dry-run", str(project / "debug.yaml"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "NoneType" in run.stdout
    told = [line for line in run.stderr.splitlines() if "returned None" in line]
    assert told == [
        f"xpm debug: no host in {project / 'launchers.yaml'} fits 'cuda(mem=8G)': "
        "helper.launcher() returned None, so jobs submitted with it run on the local machine "
        f"(`xpm launchers find 'cuda(mem=8G)' --yaml {project / 'debug.yaml'}` says why; "
        "helper.require_launcher() raises instead)"
    ]
