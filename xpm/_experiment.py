"""Experiments: the ``with experiment(...)`` context, run modes and submission.

How a run stops (xpm/_stopping.py), its run record (xpm/_runrecord.py) and what it tells
about its jobs (xpm/_summary.py) are parts of :class:`Experiment` kept in their own modules.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._current import ACTIVE, current_experiment
from ._jobdir import JobDir, tags_text
from ._runrecord import RunRecord
from ._scheduler import Job, Scheduler
from ._stopping import StopSignals, Terminated
from ._submission import JobSubmission, inherited_tags
from ._summary import RunSummary
from ._vocabulary import RUN_MODES, RunMode, arrays_root, as_run_mode, experiments_root, jobs_root
from .errors import ExperimentError, JobDirectoryError
from .launchers import recorded_description

if TYPE_CHECKING:
    from ._dirwriter import DirectoryWriter, NewDirectory
    from ._task import Task
    from .launchers import Launcher

_RUN_SEQUENCE = itertools.count()


class Experiment(StopSignals, RunRecord, RunSummary):
    """An experiment on ``workdir``: ``with experiment("runs", "sweep") as xp: task.submit()``.

    ``run_mode``: ``normal`` runs everything and waits; ``generate`` writes job directories
    without running; ``dry-run`` writes nothing and prints the plan.  At the end a summary is
    printed and :class:`xpm.errors.JobsFailedError` is raised when a job failed.

    ``progress``: ``True`` rewrites one live progress line, ``"lines"`` prints a plain line
    each time the counts change (for logs), ``False`` prints none (the summary stays); by
    default, live on a terminal, lines otherwise.
    ``max_parallel`` caps the jobs running at once across launchers (each launcher also
    has its own limit).  ``detach=True`` returns once every job is handed to its launcher.

    ``dirty_git`` says what to do when the code (the ``__main__`` file's repository, those of
    ``code_paths`` and of the submitted tasks' modules) has uncommitted changes: ``warn``
    (default) or ``ignore`` run on a pinned snapshot of them, ``error`` refuses to start.
    ``launcher``: the default launcher of its tasks (local, one job per CPU, by default);
    ``echo``: where its messages go (standard error by default).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        name: str,
        run_mode: str = "normal",
        *,
        launcher: Launcher | None = None,
        max_parallel: int | None = None,
        progress: bool | str | None = None,
        echo: Callable[[str], None] | None = None,
        dirty_git: str = "warn",
        code_paths: Sequence[str | os.PathLike[str]] = (),
        detach: bool = False,
    ) -> None:
        self.detach = detach
        mode = as_run_mode(run_mode)
        if mode is None:
            raise ExperimentError(
                f"unknown run mode {run_mode!r}: use one of {', '.join(RUN_MODES)}"
            )
        problem = name_problem(name)
        if problem is not None:
            raise ExperimentError(f"invalid experiment name {_shown(name)}: {problem}")
        problem = workdir_problem(Path(workdir))
        if problem is not None:
            raise ExperimentError(f"workdir {os.fspath(workdir)}: {problem}")
        if max_parallel is not None and max_parallel < 1:
            raise ExperimentError(f"max_parallel={max_parallel}: give a positive integer")
        self.workdir = Path(workdir).absolute()
        self.name = name
        self.run_mode: RunMode = mode
        # Unique even for several runs started by one process within the same second.
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        seq = next(_RUN_SEQUENCE)
        if seq:
            self.run_id += f"-{seq}"
        self._launcher = launcher
        self.scheduler = Scheduler(max_parallel=max_parallel)
        self.scheduler.detaching = detach  # jobs without room are left to a later run
        self.jobs: dict[tuple[str, str], Job] = {}
        self.plan: list[dict[str, Any]] = []
        if progress not in (None, True, False, "lines"):
            raise ExperimentError(
                f"progress={progress!r}: use True (a live line), 'lines' (a line at each "
                "change), False (none) or None (live on a terminal, else lines)"
            )
        if progress is None:
            progress = True if sys.stderr.isatty() else "lines"
        #: True: one live line; "lines": a plain line each time the counts change; False: none.
        self._progress: bool | str = progress
        self._echo = echo or (lambda text: print(text, file=sys.stderr))
        self._token: contextvars.Token[Experiment | None] | None = None
        self._submissions: list[dict[str, Any]] = []
        self.start_time = time.time()
        self.end_time: float | None = None
        self.info: dict[str, Any] = {}
        self._submit_listeners: list[Callable[[Job], None]] = []
        self._recorder: Any = None  # xpm.index recorder (None in dry-run or when unusable)
        self._directories: DirectoryWriter | None = None  # generate mode's writer
        #: Why this workdir, and more words for the run's first line (``xpm run-experiment``
        #: says which launchers.yaml it uses).
        self.workdir_reason = ""
        self.start_notes: list[str] = []
        self._started = True  # set to False on entering: the first line is still to come
        from .git import RunGit  # light: git's command line, no GitPython

        #: The git states of this run's code (see docs/git.md); validates ``dirty_git``.
        self.git = RunGit(
            self.run_id, self.workdir, dirty_git, pin=run_mode != "dry-run", echo=self._say
        )
        self._code_paths = list(code_paths)
        self.scheduler.provenance = self.attempt_provenance
        self._described: dict[int, tuple[Launcher, dict[str, Any]]] = {}
        #: (task id, tag key) pairs already warned about: two upstream jobs, two values.
        self._tag_conflicts_said: set[tuple[str, str]] = set()
        #: Handlers of STOP_SIGNALS before this run replaced them (restored at its end).
        self._previous_handlers: dict[int, Any] = {}
        self._stopped_by: Terminated | None = None
        #: Guards the submissions not yet in the run record (the index writer flushes them).
        self._submissions_lock = threading.Lock()

    def _announce_start(self) -> None:
        """The run's first line: its mode and workdir (once, before any other message)."""
        if self._started:
            return
        self._started = True
        why = f" ({self.workdir_reason})" if self.workdir_reason else ""
        notes = "".join(f"; {note}" for note in self.start_notes if note)
        mode = "dry run" if self.run_mode == "dry-run" else f"{self.run_mode} run"
        self._echo(f"xpm {self.name}: {mode}, workdir {self.workdir}{why}{notes}")

    def _say(self, text: str) -> None:
        self._announce_start()
        self._echo(text)

    # --- launcher ----------------------------------------------------------------------------
    @property
    def launcher(self) -> Launcher:
        """The default launcher of this experiment (local, one job per CPU, unless given)."""
        if self._launcher is None:
            from .launchers.local import LocalLauncher

            self._launcher = LocalLauncher()
        return self._launcher

    def add_submit_listener(self, listener: Callable[[Job], None]) -> None:
        """Call ``listener(job)`` for each new job of this run (after its directory exists)."""
        self._submit_listeners.append(listener)

    # --- context -----------------------------------------------------------------------------
    def __enter__(self) -> Experiment:
        from . import _task

        if _task.LOADING_USER_CODE:
            # A script defining tasks was imported by its own job: starting the experiment
            # again would launch jobs recursively.
            raise ExperimentError(
                "an experiment was started while a job imported its task's module: the script "
                "that defines the tasks runs an experiment at import; put the experiment under "
                '`if __name__ == "__main__":` or move the tasks to their own module'
            )
        # Git state of the code (snapshot, pins) before anything is written: the "error"
        # policy refuses to start here (with one error line: the first line comes after).
        self._started = False
        self.info.update(self.git.start(self._code_paths))
        self._announce_start()
        if self.run_mode != "dry-run":
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._write_run_record()
            from .index import attach

            self._recorder = attach(self)
        if self.run_mode == "normal":
            self.launcher.warm_up()  # e.g. the local fork server starts beside the submissions
        if self.run_mode != "dry-run" and not self.detach:
            self._handle_stop_signals(raise_them=True)
        self._token = ACTIVE.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._close(exc_type, exc)
        except Exception as error:
            self._raise_storage_error(error)
            raise
        self._raise_storage_error(exc)

    def _close(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Wait for the jobs (or cancel them after ``exc_type``), then record the run's end."""
        stopped: type[BaseException] | None = None  # Ctrl-C or a stop signal while waiting
        try:
            if exc_type is None:
                try:
                    self.wait()
                except KeyboardInterrupt as e:
                    stopped = type(e)
                    self._interrupt()
                    raise
            elif issubclass(exc_type, KeyboardInterrupt):
                self._interrupt()
            else:
                self.scheduler.cancel_all(f"experiment stopped: {exc_type.__name__}")
        finally:
            # From here on a stop signal must not cut the recording short: it is noted only.
            self._handle_stop_signals(raise_them=False)
            self.scheduler.shutdown()
            if self._token is not None:
                ACTIVE.reset(self._token)
            write_error = self._finish_directories()
            self.end_time = time.time()
            if self.run_mode != "dry-run":
                self._announce_stragglers()
                failure = (
                    exc_type or stopped or (type(write_error) if write_error is not None else None)
                )
                self.info["outcome"] = self._outcome(failure, exc if exc_type else write_error)
                self._flush_submissions()
                self._write_run_record()
                from .index import detach

                detach(self._recorder)
            self._restore_stop_signals()
        if write_error is not None:
            if exc_type is not None:  # the body's error goes on; this one must not vanish
                self._echo(f"xpm {self.name}: also: {write_error}")
            else:
                raise write_error
        if exc_type is None:
            self._summarize()

    def _raise_storage_error(self, failure: BaseException | None) -> None:
        """A full or read-only file system ends the run with a :class:`StorageError` saying
        where its jobs were left, for the Python API as for the CLI (never a bare OSError)."""
        from .errors import XpmError

        if failure is None or isinstance(failure, XpmError):
            return
        from ._storage import first_storage_error, storage_error

        full = first_storage_error(failure)
        if full is not None:
            states = [job.state for job in self.jobs.values()]
            raise storage_error(
                full, self.workdir, experiment=self.name, job_states=states
            ) from failure

    def _announce_stragglers(self) -> None:
        """Tell the listeners (the index) about jobs whose directory was written but whose
        submission was cut short (Ctrl-C) before they were told; read back from disk."""
        for job in self.jobs.values():
            if job.submission.announced or not job.jobdir.params.exists():
                continue
            job.submission.untouched = False
            job.submission.params_doc = None
            for listener in self._submit_listeners:
                listener(job)
            job.submission.announced = True

    def _finish_directories(self) -> BaseException | None:
        """Wait for generate mode's directory writer; jobs another process made first get
        their real state.  Returns the writer's error (or a Ctrl-C while waiting for it)
        instead of raising it, so the run record and the index are still written."""
        writer, self._directories = self._directories, None
        if writer is None:
            return None
        from .errors import XpmError

        try:
            writer.close()
        except (Exception, KeyboardInterrupt) as e:
            if not isinstance(e, (XpmError, KeyboardInterrupt)):
                e = JobDirectoryError(f"could not write job directories: {type(e).__name__}: {e}")
            return e
        return None

    # --- submission --------------------------------------------------------------------------
    def submit(self, task: Task, launcher: Launcher | None = None) -> Any:
        """Schedule ``task`` (see :meth:`xpm.Task.submit`)."""
        from ._task import analyze, claim_generated, resolve_generated

        found = analyze(task)  # checks required values and freezes the whole tree
        if self.git.add_class(type(task)):  # its code is in another repository: record it
            self.info["git"] = self.git.records()
            if self.run_mode != "dry-run":
                self._write_run_record()
        info = type(task).__xpm__
        ident = task.__identifier__().hex
        key = (info.typeid, ident)
        label = f"{info.typeid}/{ident[:12]}"
        jobdir = JobDir(self.workdir, info.typeid, ident)
        claim_generated(task, key, jobdir, found)  # raises before anything is written
        job = self.jobs.get(key)
        if job is not None:
            if job.task is not task:
                # An equal task object: the same job, so the same directory and paths.
                task.__dict__["_xpm_jobdir"] = job.jobdir
                resolve_generated(key, label, job.jobdir, found)
            return self._outputs(task)
        dependencies: list[Job] = []
        for upstream in found.dependencies:
            up_key = (type(upstream).__xpm__.typeid, upstream.__identifier__().hex)
            dep_job = self.jobs.get(up_key)
            if dep_job is None:
                raise ExperimentError(
                    f"{type(task).__qualname__} uses {type(upstream).__qualname__}, which was "
                    "not submitted in this experiment: submit it first and pass its outputs"
                )
            if dep_job not in dependencies:
                dependencies.append(dep_job)
        own = _jsonable_tags(found.tags)
        tags = inherited_tags(
            label,
            dependencies,
            own,
            already_said=self._tag_conflicts_said,
            say=lambda text: self._say(f"xpm {self.name}: {text}"),
        )
        tags.update(own)
        task.__dict__["_xpm_jobdir"] = jobdir
        resolve_generated(key, label, jobdir, found)
        job = Job(jobdir, launcher or self.launcher, JobSubmission(task, tags), dependencies)
        self.jobs[key] = job
        outputs = self._outputs(task)
        if self.run_mode == "dry-run":
            self._plan_job(job)
        else:
            self._write_job(job)
        return outputs

    def _write_job(self, job: Job) -> None:
        """Normal and generate modes: write ``job``'s directory, record the submission, then
        hand the job on as the run mode says; it is announced to the index once its
        directory exists."""
        created, done, new_directory = self._write_directory(job)
        self._note_submission(job)
        if self.run_mode == "generate":
            job.state = "DONE" if done else "UNSCHEDULED"
            job.already_done = done
            job.submission.untouched = created
        elif done:
            # Fast path: a DONE job is never run again; no lock needed (markers are final).
            job.state = "DONE"
            job.already_done = True
        else:
            self.scheduler.enqueue(job)
        if new_directory is not None and self._directories is not None:
            self._directories.write(new_directory, job)  # announced once it is written
        else:
            self._announce(job)

    def _write_directory(self, job: Job) -> tuple[bool, bool, NewDirectory | None]:
        """Write ``job``'s directory, or update an existing one; returns whether this run
        creates it, whether the job is done, and the directory generate mode's writer is to
        make (None: written here)."""
        from ._serialize import render, to_params

        task, jobdir, tags = job.task, job.jobdir, job.submission.tags
        directories = self._directories
        if directories is None and self.run_mode == "generate":
            from ._dirwriter import DirectoryWriter

            directories = self._directories = DirectoryWriter(self.workdir, self._written)
        if directories is not None and not directories.exists(job.task_id, job.identifier):
            # New directories are made by a helper process once there are many (see
            # xpm/_dirwriter.py); one that another process makes meanwhile is handled there.
            doc = job.submission.params_doc = to_params(task, self.workdir)
            from ._dirwriter import NewDirectory  # loaded already: generate mode's writer

            text = tags_text(tags) if tags else None
            return True, False, NewDirectory(job.task_id, job.identifier, render(doc), text)
        if jobdir.create():
            # A directory this process just created: nobody can be reading it yet.  The
            # index records the params document without reading the file back.
            doc = job.submission.params_doc = to_params(task, self.workdir)
            jobdir.write_params(render(doc), fresh=True)
            if tags:
                jobdir.write_tags(tags)
            return True, False, None
        done = jobdir.is_done()
        if not done:
            # An ended job submitted again waits to run: the record says so from now on.
            jobdir.requeue(f"{self.name}/{self.run_id}")
        # A job that will run gets this submission's Meta values (device, threads...); a
        # DONE job keeps the params.json it ran with.
        if not done or not jobdir.params.exists():
            doc = job.submission.params_doc = to_params(task, self.workdir)
            jobdir.write_params(render(doc))
        if jobdir.read_tags() != tags:
            jobdir.write_tags(tags)
            job.submission.tags_changed = True
        return False, done, None

    def _note_submission(self, job: Job) -> None:
        """Add ``job`` to the run's list of submissions (written to its record by the
        thousand)."""
        job.submission.submitted = time.time()
        with self._submissions_lock:
            self._submissions.append(
                {
                    "time": job.submission.submitted,
                    "task": job.task_id,
                    "identifier": job.identifier,
                    "tags": job.submission.tags,
                }
            )
            full = len(self._submissions) >= 1000
        if full:
            self._flush_submissions()

    def _written(self, job: Job, existing: bool | None) -> None:
        """The directory writer made ``job``'s directory; ``existing``: another process had
        made it meanwhile (True: and finished the job), so it is read back from disk."""
        if existing is not None:
            job.submission.untouched = False
            job.submission.params_doc = None  # a DONE job keeps the params.json it ran with
            job.already_done = existing
            job.state = "DONE" if existing else "UNSCHEDULED"
        self._announce(job)

    def _announce(self, job: Job) -> None:
        """Tell the submit listeners (the index) about ``job``, whose directory exists."""
        for listener in self._submit_listeners:
            listener(job)
        job.submission.announced = True
        job.submission.params_doc = None  # listeners took what they need; 10,000 jobs add up

    def _outputs(self, task: Task) -> Any:
        from ._task import mark_outputs

        outputs = task.task_outputs(lambda value: mark_outputs(task, value))
        return outputs

    # --- waiting and reporting ---------------------------------------------------------------
    def wait(self) -> None:
        """Block until every submitted job has ended (normal mode).

        With ``detach=True``, block only until every job is handed to its launcher, then stop
        watching: jobs queued in a backend such as Slurm go on after this process exits, and a
        later run of the experiment re-attaches to them.
        """
        if self.run_mode != "normal":
            return
        self.scheduler.close_submissions()
        if self.detach:
            self._detach()
            return
        last = [""]

        def tick() -> None:
            if self._progress is False:
                return
            line = self._progress_line()
            if self._progress is True:
                sys.stderr.write("\r\x1b[2K" + line)
                sys.stderr.flush()
            elif line != last[0]:
                self._echo(line)
            last[0] = line

        self.scheduler.wait(on_tick=tick if self.scheduler.jobs else None)
        if self._progress is True and self.scheduler.jobs:
            sys.stderr.write("\r\x1b[2K")

    def attempt_provenance(self, job: Job) -> dict[str, Any]:
        """What the event starting an attempt of ``job`` records: this run, its git states
        and the launcher's full description (see docs/git.md)."""
        launcher = job.launcher
        cached = self._described.get(id(launcher))
        if cached is None or cached[0] is not launcher:
            # Described once per launcher (Slurm's reads its signature): asked at every launch.
            cached = self._described[id(launcher)] = (launcher, recorded_description(launcher))
        return {
            "run": f"{self.name}/{self.run_id}",
            "git": self.git.records(),
            "launcher_description": cached[1],
        }


#: The longest experiment name, in UTF-8 bytes (it names a directory: at most 255 bytes).
NAME_MAX_BYTES = 200


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as an experiment name (it names the directory
    ``WORKDIR/experiments/<name>``), or None."""
    if not name or "/" in name or name.startswith("."):
        return "use a non-empty name without '/' that does not start with '.'"
    if any(c < " " or c == "\x7f" for c in name):
        return "it holds a control character (NUL, newline, ...); use printable characters"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode (a lone surrogate); write the characters themselves"
    if size > NAME_MAX_BYTES:
        return f"it is {size} bytes long, more than {NAME_MAX_BYTES}; use a shorter name"
    return None


def workdir_problem(workdir: Path) -> str | None:
    """Why ``workdir`` cannot be a workdir (a file, or under one), or None; checked before
    anything is written."""
    path = workdir.absolute()
    while True:
        try:
            if not path.is_dir() and path.exists():
                what = "" if path == workdir.absolute() else f"{path} "
                return f"{what}is not a directory; give a directory (it is created if missing)"
        except OSError as error:  # e.g. a name too long for the file system
            return f"cannot be used: {error.strerror or error}"
        if path.parent == path:
            break
        path = path.parent
    for sub in (jobs_root(workdir), experiments_root(workdir), arrays_root(workdir)):
        with contextlib.suppress(OSError):
            if sub.exists() and not sub.is_dir():
                return (
                    f"its {sub.name} is not a directory (xpm keeps its own files there); "
                    "move it away or give another workdir"
                )
    return None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _jsonable_tags(tags: dict[str, Any]) -> dict[str, Any]:
    import numbers
    from enum import Enum

    out: dict[str, Any] = {}
    for key, value in tags.items():
        # Exact types: an IntEnum is an enum (its name), a numpy float a plain float.
        if isinstance(value, Enum):
            out[key] = value.name
        elif value is None or isinstance(value, bool):
            out[key] = value
        elif isinstance(value, numbers.Integral):
            out[key] = int(value)
        elif isinstance(value, numbers.Real):
            out[key] = float(value)
        elif isinstance(value, str):
            out[key] = str(value)
        else:
            out[key] = str(value)
    return out


#: ``with experiment("runs", "sweep") as xp:``: the name researchers write; the class itself.
experiment = Experiment


__all__ = ["Experiment", "experiment", "current_experiment"]
