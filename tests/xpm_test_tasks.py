"""Tasks used by the scheduler tests; imported by real job processes too."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from xpm import Config, Meta, Param, PathGenerator, Task, field


def _count(counter: str, text: str) -> None:
    if counter:
        with open(counter, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


class Model(Config):
    """A model to learn."""

    n_layers: Param[int] = 2
    """Number of layers"""
    activation: Param[str] = "relu"
    device: Meta[str] = "cpu"


class LearnedModel(Config):
    """The output of Learn: a model and where its weights are."""

    model: Param[Model]
    path: Meta[Path]


class Learn(Task):
    """Writes 'weights' for a model."""

    model: Param[Model]
    epochs: Param[int]
    gpus: Meta[int] = 2
    counter: Meta[str] = ""
    #: A file to wait for before ending (a test holds the job in flight with it).
    hold: Meta[str] = ""
    model_path: Meta[Path] = field(default_factory=PathGenerator("model.pth"))

    def execute(self) -> None:
        _count(self.counter, f"learn {self.model.n_layers}")
        deadline = time.monotonic() + 120
        while self.hold and not os.path.exists(self.hold) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"learning {self.model.n_layers} layers for {self.epochs} epochs")
        self.model_path.write_text(f"weights {self.model.n_layers}")

    def task_outputs(self, dep):  # type: ignore[no-untyped-def]
        return dep(LearnedModel(model=self.model, path=self.model_path))


class Evaluate(Task):
    """Reads the weights and reports an accuracy."""

    model: Param[LearnedModel]
    counter: Meta[str] = ""

    def execute(self) -> None:
        _count(self.counter, "evaluate")
        text = self.model.path.read_text()
        self.report(accuracy=0.5 + 0.1 * self.model.model.n_layers, weights=text)


class Count(Task):
    """Appends a line to a counter file, optionally after sleeping."""

    n: Param[int] = 0
    counter: Meta[str] = ""
    sleep: Meta[float] = 0.0
    started: Meta[str] = ""

    def execute(self) -> None:
        if self.started:
            # Whole or absent: a test polls for the file and reads the pid at once (it read
            # an empty file once, between the create and the write).
            Path(self.started + ".tmp").write_text(str(os.getpid()))
            os.replace(self.started + ".tmp", self.started)
        time.sleep(self.sleep)
        _count(self.counter, f"count {self.n}")


class Fail(Task):
    """Fails with an exception (or succeeds once ``ok_file`` exists)."""

    n: Param[int] = 0
    ok_file: Meta[str] = ""
    reports: Meta[bool] = False  # report a loss before failing

    def execute(self) -> None:
        print("about to fail")
        if self.reports:
            self.report(loss=1.5, step=0)
        if self.ok_file and Path(self.ok_file).exists():
            print("ok this time")
            return
        raise RuntimeError("this task always fails")


class SelfKill(Task):
    """Dies by SIGKILL before it can record anything."""

    def execute(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class Uses(Task):
    """Depends on another task's output."""

    upstream: Param[Task]
    counter: Meta[str] = ""

    def execute(self) -> None:
        _count(self.counter, "uses")


class ListModules(Task):
    """Writes the names of the modules loaded in the job process."""

    def execute(self) -> None:
        import sys

        Path("modules.txt").write_text("\n".join(sorted(sys.modules)))


class ReportWithFunction(Task):
    """Reports through the module-level ``xpm.report()`` rather than ``self.report()``."""

    x: Param[int] = 1

    def execute(self) -> None:
        import xpm

        xpm.report(value=self.x * 10, step=1)


def _umask() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return -1


class Introspect(Task):
    """Writes what its process sees to ``seen.json``; leaves work for interpreter exit."""

    n: Param[int] = 0

    def execute(self) -> None:
        import atexit
        import json
        import random
        import resource
        import sys

        fds = {}
        for name in os.listdir("/proc/self/fd"):
            if os.path.exists(f"/proc/self/fd/{name}"):  # not the listing's own descriptor
                fds[name] = os.readlink(f"/proc/self/fd/{name}")
        seen = {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "sid": os.getsid(0),
            "pgid": os.getpgid(0),
            "cwd": os.getcwd(),
            "argv": sys.argv,
            "main": getattr(sys.modules["__main__"], "__file__", None),
            "path": sys.path,
            "environ": dict(os.environ),
            "fds": fds,
            "random": random.random(),
            "hash_randomization": sys.flags.hash_randomization,
            "tzname": list(time.tzname),
            "umask": _umask(),
            "cpus": sorted(os.sched_getaffinity(0)),
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "streams": {
                name: [
                    type(getattr(sys, name).buffer).__name__,
                    getattr(sys, name).line_buffering,
                    getattr(sys, name).encoding,
                    getattr(sys, name).errors,
                    getattr(sys, name).seekable(),
                ]
                for name in ("stdin", "stdout", "stderr")
            },
            "xpm_run_imported": "xpm.run" in sys.modules,
        }
        Path("seen.json").write_text(json.dumps(seen))

        def at_exit() -> None:
            main = getattr(sys.modules["__main__"], "__file__", None)
            Path("atexit.txt").write_text(json.dumps(["ran", sys.argv[0], main]))

        atexit.register(at_exit)
        sys.stdout.write("left in the buffer")  # no newline, no flush: exit must flush it


# --- generated paths: one owner per configuration, one place per position (issue 14) ------
class Validation(Config):
    """Holds a generated path: where its task writes a validation index."""

    index: Meta[Path] = field(default_factory=PathGenerator("index"))


class Validates(Task):
    """Writes its own x into each validation index it holds (single, list and dict)."""

    x: Param[int] = 0
    validation: Param[Validation | None] = None
    validations: Param[list[Validation]] = field(default_factory=list)
    by_name: Param[dict[str, Validation]] = field(default_factory=dict)

    def execute(self) -> None:
        held = [self.validation, *self.validations, *self.by_name.values()]
        for validation in held:
            if validation is not None:
                validation.index.parent.mkdir(parents=True, exist_ok=True)
                with open(validation.index, "a") as fh:
                    fh.write(f"{self.x}\n")


class Say(Task):
    """Writes a word to its generated output file."""

    word: Param[str]
    out: Meta[Path] = field(default_factory=PathGenerator("word.txt"))

    def execute(self) -> None:
        self.out.write_text(self.word)


class Concat(Task):
    """Reads the files of the Say tasks it is given."""

    strings: Param[list[Say]]
    out: Meta[Path] = field(default_factory=PathGenerator("concat.txt"))

    def execute(self) -> None:
        self.out.write_text(" ".join(s.out.read_text() for s in self.strings))


class Train(Task):
    """A sweep member for the results tests: reports a loss per step, then an accuracy and
    an ``lr`` result (a name its tag and parameter share); ``gate``: wait for that file to
    exist before the steps; ``hold``: after the steps, wait for that file before finishing
    (to look at a running job's results)."""

    lr: Param[float] = 0.1
    optimizer: Param[str] = "sgd"
    seed: Param[int] = 0
    steps: Param[int] = 3
    gate: Meta[str] = ""
    hold: Meta[str] = ""

    def execute(self) -> None:
        _wait_for(self.gate)
        for step in range(self.steps):
            self.report(loss=1.0 / (step + 1 + self.lr), step=step)
        _wait_for(self.hold)
        self.report(accuracy=round(0.5 + self.lr + 0.01 * self.seed, 6), lr=self.lr * 2)


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 120
    while path and not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)


class Requeued(Task):
    """Reports which run of it this is (Slurm's restart count); its first run waits for Slurm
    to requeue it."""

    n: Param[int]

    def execute(self) -> None:
        restart = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        print(f"run {restart}", flush=True)
        self.report(run=restart)
        if restart == 0:
            time.sleep(600)


class Flagged(Task):
    """A task with a bool parameter (the web view shows it true/false, not 1/0)."""

    flag: Param[bool] = False
    scratch: Meta[str] = "/tmp"

    def execute(self) -> None:
        pass
