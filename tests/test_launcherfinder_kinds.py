"""Each launcher kind owns its launchers.yaml keys (#17): launcherfinder keeps them in
``Host.settings`` without naming them, the kind's launcher class declares, reads and shows
them.  Slurm's keys still give the sbatch options they gave; a kind registered in
``KINDS`` by the tests declares and reads its own with no change to launcherfinder."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from xpm.cli import cli
from xpm.errors import LauncherError
from xpm.launcherfinder import (
    Host,
    HostEntry,
    LauncherRegistry,
    Requirement,
    find_launcher,
    launcher_config,
)
from xpm.launchers import KINDS, JobDir, LaunchedJob, Launcher, LaunchOutcome, SlurmLauncher

ROOT = Path(__file__).resolve().parent.parent

SLURM_YAML = """\
hosts:
  - name: gpu-small
    type: slurm
    partition: gpu
    cpus: 32
    memory: 256G
    accelerators: [{type: cuda, memory: 16G, count: 2}]
    account: proj42
    qos: normal
    constraint: v100
    options: {mail-type: END, exclusive: true}
  - name: gpu-big
    type: slurm
    accelerators: [{type: cuda, memory: 16G, count: 4}]
    gpu_request: gpus
"""


def load(tmp_path: Path, text: str) -> LauncherRegistry:
    path = tmp_path / "launchers.yaml"
    path.write_text(text, encoding="utf-8")
    return LauncherRegistry.load(path)


# --------------------------------------------------------------------------- Slurm's keys


@pytest.mark.parametrize(
    ("spec", "host", "sbatch"),
    [
        (
            "duration=5 days & cuda(mem=16G) * 2 & cpu(mem=400MiB, cores=4)",
            "gpu-small",
            [
                ("partition", "gpu"),
                ("time", "5-00:00:00"),
                ("cpus-per-task", "4"),
                ("mem", "400M"),
                ("gres", "gpu:2"),
                ("account", "proj42"),
                ("qos", "normal"),
                ("constraint", "v100"),
                ("exclusive", None),
                ("mail-type", "END"),
            ],
        ),
        # No partition key: the host's name; gpu_request: gpus gives --gpus=N.
        (
            "cuda() * 3 & duration=1h",
            "gpu-big",
            [("partition", "gpu-big"), ("time", "0-01:00:00"), ("gpus", "3")],
        ),
    ],
)
def test_slurm_keys_give_the_same_sbatch_options(
    tmp_path: Path, spec: str, host: str, sbatch: list[tuple[str, str | None]]
) -> None:
    """The sbatch options main gave for the same file (compared before the move)."""
    registry = load(tmp_path, SLURM_YAML)
    match = registry.find(spec)
    assert match is not None and match.host.name == host
    launcher = find_launcher(spec, registry=registry)
    assert isinstance(launcher, SlurmLauncher)
    assert launcher.sbatch_options() == sbatch


def test_a_slurm_host_shows_its_partition_through_its_class(tmp_path: Path) -> None:
    small, big = load(tmp_path, SLURM_YAML).hosts
    assert str(small) == (
        "gpu-small (slurm, partition gpu, 32 cores, 256G memory, 2 GPUs, priority 0)"
    )
    assert str(big) == "gpu-big (slurm, 4 GPUs, priority 0)"  # no partition key: not shown


def test_slurm_settings_built_by_hand() -> None:
    """A Host made in code takes the Slurm keys in ``settings``; the class gives defaults
    and refuses a key it does not know."""
    host = Host(name="short", type="slurm", settings={"partition": "debug", "qos": "fast"})
    options = launcher_config(host, Requirement())[1]
    assert (options["partition"], options["qos"], options["account"]) == ("debug", "fast", None)
    assert "partition debug" in str(host)
    typo = Host(name="short", type="slurm", settings={"partiton": "debug"})
    with pytest.raises(LauncherError, match=r"host 'short': unknown Slurm host setting\(s\) "):
        launcher_config(typo, Requirement())


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "{name: a, type: slurm, partiton: gpu}",
            "hosts[0] (a): unknown key 'partiton'; valid keys: accelerators, account, "
            "constraint, cpus, gpu_request, max_duration, memory, name, options, partition, "
            "priority, qos, tags, type",
        ),
        (
            "{name: a, type: local, qos: normal}",
            "hosts[0] (a): key 'qos' is only valid for slurm hosts; valid keys for local "
            "hosts: accelerators, cpus, max_duration, memory, name, priority, tags, type",
        ),
        (
            "{name: a, type: slurm, gpu_request: gpu}",
            "hosts[0] (a): gpu_request: expected one of gres, gpus, got str 'gpu'",
        ),
        (
            "{name: a, type: slurm, options: {account: x}}",
            "hosts[0] (a): options: 'account' is set by xpm (from the spec or the host's "
            "partition/account/qos/constraint keys); remove it from options",
        ),
    ],
)
def test_a_bad_key_of_a_kind_is_one_line_and_exit_2(
    tmp_path: Path, host: str, message: str
) -> None:
    path = tmp_path / "launchers.yaml"
    path.write_text(f"hosts:\n  - {host}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["launchers", "list"], env={"XPM_LAUNCHERS": str(path)})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"xpm: error: {path}: {message}"]


def test_launcherfinder_names_no_slurm_key() -> None:
    """What a Slurm host sets is read in xpm/launchers/; launcherfinder's code names none of
    those keys (no string, no attribute, no keyword)."""
    named = []
    for path in sorted((ROOT / "xpm" / "launcherfinder").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for key in SlurmLauncher.host_keys:
            forms = [f'"{key}"', f"'{key}'"]
            if key != "options":  # a word any launcher's options use
                forms += [f".{key}", f"{key}="]
            named += [f"{path.name}: {form}" for form in forms if form in text]
    assert named == []


# --------------------------------------------------------------------------- a third kind


class _Unused(Launcher):
    """Chosen by find_launcher only: nothing is submitted in these tests."""

    def submit(self, jobdir: JobDir, dependencies: Sequence[LaunchedJob] = ()) -> LaunchedJob:
        raise NotImplementedError

    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        raise NotImplementedError

    def cancel(self, jobs: list[LaunchedJob]) -> None:
        raise NotImplementedError


class QueueLauncher(_Unused):
    """A backend of the tests' own: it reads, checks and shows its launchers.yaml keys."""

    kind: ClassVar[str] = "queue"
    host_keys: ClassVar[tuple[str, ...]] = ("queue", "slots")

    def __init__(self, queue: str = "default", slots: int = 1, cores: int | None = None):
        self.queue, self.slots, self.cores = queue, slots, cores

    @classmethod
    def host_settings(cls, entry: HostEntry) -> dict[str, Any]:
        settings = {"queue": entry.string("queue"), "slots": entry.integer("slots", minimum=1)}
        return {key: value for key, value in settings.items() if value is not None}

    @classmethod
    def describe_host(cls, host: Host) -> list[str]:
        return [f"queue {host.settings.get('queue', host.name)}"]

    @classmethod
    def options_for(cls, host: Host, requirement: Requirement) -> dict[str, Any]:
        return {
            "queue": host.settings.get("queue", host.name),
            "slots": host.settings.get("slots", 1),
            "cores": requirement.cpu.cores,
        }


class SiteLauncher(_Unused):
    """A kind that declares a key and keeps the default reading (the value as written)."""

    kind: ClassVar[str] = "site"
    host_keys: ClassVar[tuple[str, ...]] = ("site",)

    def __init__(self, site: Any = None) -> None:
        self.site = site

    @classmethod
    def options_for(cls, host: Host, requirement: Requirement) -> dict[str, Any]:
        return {"site": host.settings.get("site")}


@pytest.fixture
def third_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two kinds above registered the way xpm's own are: one line each in ``KINDS``."""
    for cls in (QueueLauncher, SiteLauncher):
        monkeypatch.setitem(KINDS, cls.kind, f"{cls.__module__}:{cls.__qualname__}")


THIRD_YAML = """\
hosts:
  - {name: q1, type: queue, queue: gpuq, slots: 4, cpus: 8, priority: 2}
  - {name: lab, type: site, site: {room: 12}}
  - {name: gpu, type: slurm, partition: gpu}
"""


@pytest.mark.usefixtures("third_kinds")
def test_a_third_kind_declares_and_reads_its_own_keys(tmp_path: Path) -> None:
    registry = load(tmp_path, THIRD_YAML)
    queue, site, slurm = registry.hosts
    assert queue.settings == {"queue": "gpuq", "slots": 4}
    assert str(queue) == "q1 (queue, queue gpuq, 8 cores, priority 2)"
    assert site.settings == {"site": {"room": 12}}  # the default reading: as written
    assert str(site) == "lab (site, priority 0)"
    assert slurm.settings == {"partition": "gpu"}
    launcher = find_launcher("cpu(cores=2)", registry=registry)
    assert isinstance(launcher, QueueLauncher)
    assert (launcher.queue, launcher.slots, launcher.cores) == ("gpuq", 4, 2)
    only_site = LauncherRegistry(hosts=(site,))
    assert launcher_config(site, Requirement()) == ("SiteLauncher", {"site": {"room": 12}})
    assert isinstance(find_launcher("cpu()", registry=only_site), SiteLauncher)


@pytest.mark.usefixtures("third_kinds")
def test_launchers_list_shows_each_kinds_own_settings(tmp_path: Path) -> None:
    """`xpm launchers list` had a Slurm `partition` column: a third kind's keys never
    showed (a review).  Each host's settings show, whatever its kind."""
    path = tmp_path / "launchers.yaml"
    path.write_text(THIRD_YAML.replace("partition: gpu}", "partition: gpu, qos: fast}"))
    env = {"XPM_LAUNCHERS": str(path)}
    table = CliRunner().invoke(cli, ["launchers", "list"], env=env)
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split()[:3] == ["name", "type", "settings"]
    shown = {line.split()[0]: line for line in table.stdout.splitlines()[2:]}
    assert "queue=gpuq, slots=4" in shown["q1"] and "site={'room': 12}" in shown["lab"]
    assert "partition=gpu, qos=fast" in shown["gpu"]
    as_json = CliRunner().invoke(cli, ["launchers", "list", "--format", "json"], env=env)
    settings = [h["settings"] for h in json.loads(as_json.stdout)]
    assert settings == [
        {"queue": "gpuq", "slots": 4},
        {"site": {"room": 12}},
        {"partition": "gpu", "qos": "fast"},
    ]


@pytest.mark.usefixtures("third_kinds")
@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("{name: q, type: queue, slots: 0}", "slots: expected an integer >= 1, got int 0"),
        ("{name: q, type: queue, queue: ''}", "queue: expected a non-empty string, got str ''"),
        (
            "{name: q, type: queue, partition: gpu}",
            "key 'partition' is only valid for slurm hosts; valid keys for queue hosts: "
            "accelerators, cpus, max_duration, memory, name, priority, queue, slots, tags, type",
        ),
        (
            "{name: q, type: slurm, slots: 2}",
            "key 'slots' is only valid for queue hosts; valid keys for slurm hosts: "
            "accelerators, account, constraint, cpus, gpu_request, max_duration, memory, name, "
            "options, partition, priority, qos, tags, type",
        ),
        ("{name: q, type: queue, site: x}", "key 'site' is only valid for site hosts"),
        ("{name: q, type: queue, sots: 2}", "unknown key 'sots'; valid keys: accelerators, "),
        ("{name: q, type: pbs}", "type: expected one of local, slurm, queue, site, got str 'pbs'"),
    ],
)
def test_a_third_kind_gets_the_same_one_line_errors(
    tmp_path: Path, host: str, message: str
) -> None:
    path = tmp_path / "launchers.yaml"
    with pytest.raises(LauncherError) as info:
        load(tmp_path, f"hosts:\n  - {host}\n")
    text = str(info.value)
    assert text.startswith(f"{path}: hosts[0] (q): {message}"), text
    assert "\n" not in text


def test_a_host_of_a_kind_this_xpm_does_not_know_still_shows() -> None:
    """``str(host)`` asks the kind's class only for settings, and never fails on a kind it
    cannot import (a host built in code, or read where its kind was registered)."""
    host = Host(name="far", type="pbs", cores=4, settings={"queue": "x"})
    assert str(host) == "far (pbs, 4 cores, priority 0)"
    assert str(Host(name="far", type="pbs")) == "far (pbs, priority 0)"


def test_a_local_only_file_loads_no_other_kinds_launcher(tmp_path: Path) -> None:
    """Reading a launchers.yaml of local hosts imports no Slurm code (every kind's class
    was loaded for every key, 6 ms of imports on each run that reads the file)."""
    import subprocess
    import sys

    path = tmp_path / "launchers.yaml"
    path.write_text("hosts:\n  - {name: laptop, type: local, cpus: 2}\n")
    code = (
        "import sys\nfrom xpm.launcherfinder import LauncherRegistry\n"
        f"hosts = LauncherRegistry.load({str(path)!r}).hosts\n"
        "print(hosts[0].name, 'xpm.launchers.slurm' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.stdout.split() == ["laptop", "False"], done.stderr
