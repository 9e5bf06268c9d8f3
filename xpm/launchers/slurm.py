"""The Slurm launcher: job scripts submitted with ``sbatch``, batched ``squeue`` polls.

Each job gets a bash script in its job directory (``job.sh``) that Slurm runs on a
compute node.  Dependencies between jobs are handed to Slurm (``--dependency=afterok``)
so a submitted plan keeps running after the experiment process exits.  One ``squeue``
call reports on every job of a poll; jobs that have left the queue are looked up with
one ``sacct`` call.  Many independent jobs can go out as one job array
(:meth:`SlurmLauncher.submit_array`).
"""

from __future__ import annotations

import difflib
import inspect
import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from .._atomicio import atomic_write_text
from .._jobdir import JobDir
from ..errors import LauncherError
from ._base import LaunchedJob, Launcher, LaunchOutcome

__all__ = ["SlurmLauncher"]

#: Slurm job states and the xpm state each maps to.
_STATE_MAP: dict[str, str] = {
    "PENDING": "SUBMITTED",
    "CONFIGURING": "SUBMITTED",
    "REQUEUED": "SUBMITTED",
    "REQUEUE_HOLD": "SUBMITTED",
    "REQUEUE_FED": "SUBMITTED",
    "RESV_DEL_HOLD": "SUBMITTED",
    "RUNNING": "RUNNING",
    "COMPLETING": "RUNNING",
    "SUSPENDED": "RUNNING",
    "STOPPED": "RUNNING",
    "SIGNALING": "RUNNING",
    "STAGE_OUT": "RUNNING",
    "RESIZING": "RUNNING",
    "COMPLETED": "DONE",
    "FAILED": "FAILED",
    "NODE_FAIL": "FAILED",
    "OUT_OF_MEMORY": "FAILED",
    "BOOT_FAIL": "FAILED",
    "DEADLINE": "FAILED",
    "TIMEOUT": "FAILED",
    "PREEMPTED": "FAILED",
    "SPECIAL_EXIT": "FAILED",
    "CANCELLED": "CANCELLED",
    "REVOKED": "CANCELLED",
}

#: Final states in which Slurm ended the job itself (its SIGTERM is then no task failure).
_ENDED_BY_SLURM = frozenset(
    {"TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
    | {"CANCELLED", "REVOKED"}
)

#: sbatch long options xpm sets itself; ``options`` may not override them.
# fmt: off
_RESERVED = frozenset(
    {
        "array", "chdir", "dependency", "error", "help", "input", "job-name",
        "kill-on-invalid-dep", "output", "parsable", "test-only", "usage", "version", "wait",
        "wrap",
    }
)
# fmt: on

#: sbatch long options (Slurm 22.05 and later) accepted as keys of ``options``.
# fmt: off
_SBATCH_OPTIONS = frozenset(
    {
        "acctg-freq", "batch", "bb", "bbf", "begin", "cluster-constraint", "clusters", "comment",
        "container", "contiguous", "core-spec", "cores-per-socket", "cpu-freq", "cpus-per-gpu",
        "deadline", "delay-boot", "distribution", "exclude", "exclusive", "export", "export-file",
        "extra-node-info", "get-user-env", "gid", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node",
        "gpus-per-socket", "gpus-per-task", "gres-flags", "hint", "hold", "ignore-pbs", "licenses",
        "mail-type", "mail-user", "mcs-label", "mem-bind", "mem-per-cpu", "mem-per-gpu", "mincpus",
        "network", "nice", "no-kill", "no-requeue", "nodefile", "nodelist", "ntasks",
        "ntasks-per-core", "ntasks-per-gpu", "ntasks-per-node", "ntasks-per-socket", "open-mode",
        "overcommit", "oversubscribe", "power", "priority", "profile", "propagate", "quiet",
        "reboot", "requeue", "reservation", "signal", "sockets-per-node", "spread-job", "switches",
        "thread-spec", "threads-per-core", "time-min", "tmp", "tres-per-task", "uid",
        "use-min-nodes", "verbose", "wait-all-nodes", "wckey",
    }
)
# fmt: on

#: Characters that can be written in an ``#SBATCH`` line as they are.  Anything else
#: (spaces, quotes, ``$``, ``;``, newlines...) goes on the sbatch command line instead,
#: where it is one argv element and needs no quoting at all.
_SBATCH_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./~^-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JOB_ID = re.compile(r"[0-9]+(_[0-9]+)?")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

#: Exit status of squeue when none of the requested ids is known any more.
_INVALID_JOB_ID = "Invalid job id"

#: Longest id list given as one argument to squeue/sacct/scancel.  Linux refuses a single
#: argument over 128 KiB ("Argument list too long"); 10,000 ids of 8 digits are ~90 KB.
_MAX_LIST_CHARS = 30_000


def _id_lists(ids: Sequence[str], limit: int = _MAX_LIST_CHARS) -> list[list[str]]:
    """``ids`` cut into lists whose comma-joined text stays under ``limit`` characters."""
    lists: list[list[str]] = []
    size = limit
    for job_id in ids:
        if size + len(job_id) + 1 > limit:
            lists.append([])
            size = 0
        lists[-1].append(job_id)
        size += len(job_id) + 1
    return lists


def _array_ids(ids: Sequence[str]) -> list[str]:
    """What to ask squeue/sacct for ``ids``: an array task ``A_i`` by its array ``A`` (one
    id whatever the array's size: the answer lists every task), other jobs by their id."""
    return sorted({job_id.partition("_")[0] for job_id in ids})


def _to_option_name(key: str) -> str:
    return key.replace("_", "-").lstrip("-")


def _printable(text: str) -> str:
    """``text`` safe inside a one-line comment (control characters replaced)."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


def _output_pattern(path: Path) -> str:
    """``path`` as an sbatch ``--output``/``--error`` value (``%`` is a pattern character)."""
    text = str(path)
    # A backslash turns pattern expansion off altogether; otherwise escape '%'.
    return text if "\\" in text else text.replace("%", "%%")


def _decode_exit(code: str) -> tuple[int | None, int | None]:
    """``(exit code, signal)`` from squeue's wait status (``768``) or sacct's ``3:0``."""
    code = code.strip()
    if ":" in code:
        exit_part, _, signal_part = code.partition(":")
        try:
            exit_code, sig = int(exit_part), int(signal_part)
        except ValueError:
            return None, None
        return exit_code, (sig or None)
    try:
        status = int(code)
    except ValueError:
        return None, None
    sig = status & 0x7F
    return (status >> 8) & 0xFF, (sig or None)


class SlurmLauncher(Launcher):
    """Run jobs on a Slurm cluster through ``sbatch``; poll them with one ``squeue`` call.

    Every resource option is optional; ``None`` leaves the cluster's default.

    :param partition: ``--partition``: the partition (queue) to submit to.
    :param time: ``--time``: the walltime limit, a Slurm time string (``"2:00:00"``,
        ``"1-12:00:00"``) or an int number of minutes.  Slurm kills the job when it is
        exceeded; xpm reports it FAILED with reason ``slurm: TIMEOUT``.
    :param cpus_per_task: ``--cpus-per-task``: CPU cores for the job.
    :param mem: ``--mem``: memory per node, a Slurm size (``"16G"``, ``"400M"``) or an
        int number of megabytes.
    :param gpus: ``--gres=gpu:N``: GPUs per node, an int, or a string such as
        ``"a100:2"`` for a typed GPU (``--gres=gpu:a100:2``).
    :param account: ``--account``: the account charged for the job.
    :param qos: ``--qos``: the quality of service.
    :param constraint: ``--constraint``: node features required (``"a100|v100"``).
    :param nodes: ``--nodes``: number of nodes (an int or a range such as ``"1-2"``).
    :param options: other sbatch long options, without the leading dashes, as a dict
        (``{"mail-type": "END", "exclusive": True}``; ``_`` may stand for ``-``).  A value
        ``True`` gives a bare flag; ``False``/``None`` leaves the option out.  Options that
        xpm sets itself (job name, directories, logs, array, dependency) are refused.
    :param array_throttle: for :meth:`submit_array`: at most this many tasks of one array
        run at once (``--array=0-N%throttle``).
    :param poll_interval: seconds between two polls of the jobs by the scheduler.
    :param binpath: the directory holding ``sbatch``, ``squeue``, ``sacct`` and
        ``scancel``; by default they are looked up on ``PATH``.

    An unknown keyword, or an unknown key in ``options``, raises
    :class:`~xpm.errors.LauncherError` listing the valid ones.
    """

    kind: ClassVar[str] = "slurm"
    supports_dependencies: ClassVar[bool] = True
    supports_arrays: ClassVar[bool] = True
    reattachable: ClassVar[bool] = True

    #: Named options and the sbatch long option each becomes.
    _SBATCH_NAMES: ClassVar[dict[str, str]] = {
        "partition": "partition",
        "time": "time",
        "cpus_per_task": "cpus-per-task",
        "mem": "mem",
        "gpus": "gres",
        "account": "account",
        "qos": "qos",
        "constraint": "constraint",
        "nodes": "nodes",
    }

    def __init__(
        self,
        partition: str | None = None,
        time: str | int | None = None,
        cpus_per_task: int | None = None,
        mem: str | int | None = None,
        gpus: int | str | None = None,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        nodes: int | str | None = None,
        options: dict[str, Any] | None = None,
        array_throttle: int | None = None,
        poll_interval: float = 30.0,
        binpath: str | Path | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LauncherError(
                f"unknown Slurm launcher option(s) {', '.join(sorted(unknown))}: "
                f"valid options are {', '.join(self.option_names())}"
            )
        self.partition = partition
        self.time = time
        self.cpus_per_task = cpus_per_task
        self.mem = mem
        self.gpus = gpus
        self.account = account
        self.qos = qos
        self.constraint = constraint
        self.nodes = nodes
        self.options = self._check_options(options or {})
        if array_throttle is not None and (
            not isinstance(array_throttle, int) or array_throttle < 1
        ):
            raise LauncherError(f"array_throttle must be a positive int, not {array_throttle!r}")
        self.array_throttle = array_throttle
        if poll_interval <= 0:
            raise LauncherError(f"poll_interval must be positive, not {poll_interval!r}")
        self.poll_interval = float(poll_interval)
        self.binpath = Path(binpath) if binpath is not None else None
        #: Raw Slurm ids of array tasks seen in squeue (for sacct -c, which knows no others).
        self._raw_ids: dict[str, str] = {}
        #: Arrays the last squeue listed a task of (any task, any state): see :meth:`poll`.
        self._listed_arrays: set[str] = set()
        #: Whether sacct must read the job-completion file (``sacct -c``: no slurmdbd).
        self._sacct_jobcomp: bool | None = None
        #: The cluster's limits from ``scontrol show config`` (read once, when needed).
        self._limits: dict[str, int] | None = None

    # --- options ----------------------------------------------------------------------------
    @classmethod
    def option_names(cls) -> list[str]:
        """The valid keyword options, in signature order (the one source of truth)."""
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind is not p.VAR_KEYWORD]

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        named = {v: k for k, v in self._SBATCH_NAMES.items()}
        for key in sorted(options):
            name = _to_option_name(str(key))
            if name in named:
                raise LauncherError(
                    f"sbatch option {key!r} in options: use the launcher option "
                    f"{named[name]}=... instead"
                )
            if name in _RESERVED:
                raise LauncherError(
                    f"sbatch option {key!r} in options is set by xpm itself and cannot be given"
                )
            if name not in _SBATCH_OPTIONS:
                close = difflib.get_close_matches(name, sorted(_SBATCH_OPTIONS), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise LauncherError(
                    f"unknown sbatch option {key!r} in options{hint}: valid options are "
                    f"{', '.join(sorted(_SBATCH_OPTIONS))}; the launcher's own options are "
                    f"{', '.join(self.option_names())}"
                )
            checked[name] = options[key]
        return checked

    def describe(self) -> dict[str, Any]:
        """The launcher's kind and every option that differs from its default."""
        described: dict[str, Any] = {"kind": self.kind}
        params = inspect.signature(type(self).__init__).parameters
        for name in self.option_names():
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            if value != params[name].default and not (name == "options" and not value):
                described[name] = value
        return described

    def sbatch_options(self) -> list[tuple[str, str | None]]:
        """The resource options as ``(long option, value or None for a flag)``, in order."""
        result: list[tuple[str, str | None]] = []
        for attr, name in self._SBATCH_NAMES.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if attr == "gpus":
                value = f"gpu:{value}"
            result.append((name, str(value)))
        for name, value in self.options.items():
            if value is None or value is False:
                continue
            result.append((name, None if value is True else str(value)))
        return result

    # --- scripts ----------------------------------------------------------------------------
    @staticmethod
    def _job_name(jobdir: JobDir) -> str:
        return _NAME_UNSAFE.sub("_", f"xpm-{jobdir.task_id}-{jobdir.identifier[:12]}")

    @staticmethod
    def _body(
        workdir: Path, command: Sequence[str], env: dict[str, str], logs: JobDir | None
    ) -> list[str]:
        """The shell lines after the ``#SBATCH`` header: cd, exports, exec."""
        if not command:
            raise LauncherError("cannot submit an empty command to Slurm")
        lines = ["set -e", f"cd -- {shlex.quote(str(workdir))}"]
        if logs is not None:
            lines.append(f"exec >{shlex.quote(str(logs.stdout))} 2>{shlex.quote(str(logs.stderr))}")
        for name in sorted(env):
            if not _ENV_NAME.fullmatch(name):
                raise LauncherError(
                    f"environment variable name {name!r} is not valid in a shell: "
                    "use letters, digits and '_', not starting with a digit"
                )
            lines.append(f"export {name}={shlex.quote(str(env[name]))}")
        lines.append("exec " + " ".join(shlex.quote(str(arg)) for arg in command))
        return lines

    def _header(self, options: list[tuple[str, str | None]]) -> tuple[list[str], list[str]]:
        """``#SBATCH`` lines for the options that can be written safely; argv for the rest."""
        lines: list[str] = []
        argv: list[str] = []
        for name, value in options:
            arg = f"--{name}" if value is None else f"--{name}={value}"
            if value is None or _SBATCH_SAFE.fullmatch(value):
                lines.append(f"#SBATCH {arg}")
            else:
                argv.append(arg)
        if argv:
            names = ", ".join(arg.partition("=")[0] for arg in argv)
            lines.append(f"# given on the sbatch command line (not writable here): {names}")
        return lines, argv

    def job_script(
        self, jobdir: JobDir, command: Sequence[str], env: dict[str, str]
    ) -> tuple[str, list[str]]:
        """The text of ``job.sh`` for one job and the sbatch arguments it needs.

        Deterministic: the same inputs give the same text.
        """
        options: list[tuple[str, str | None]] = [
            ("job-name", self._job_name(jobdir)),
            ("chdir", str(jobdir.path)),
            ("output", _output_pattern(jobdir.stdout)),
            ("error", _output_pattern(jobdir.stderr)),
            *self.sbatch_options(),
        ]
        header, argv = self._header(options)
        lines = [
            "#!/bin/bash",
            f"# xpm job {_printable(jobdir.relpath)}: generated by the Slurm launcher, submitted with sbatch",
            *header,
            *self._body(jobdir.path, command, env, logs=None),
        ]
        return "\n".join(lines) + "\n", argv

    # --- commands ---------------------------------------------------------------------------
    def _exe(self, name: str) -> str:
        return str(self.binpath / name) if self.binpath is not None else name

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        argv = [self._exe(argv[0]), *argv[1:]]
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            where = f"in {self.binpath}" if self.binpath is not None else "on PATH"
            raise LauncherError(
                f"{argv[0]} not found {where}: install the Slurm client commands or "
                "set the launcher's binpath"
            ) from None
        except OSError as e:  # E2BIG, EMFILE, EAGAIN...: a failed call, retried by the caller
            raise LauncherError(f"could not run {argv[0]}: {e.strerror or e}") from None
        except subprocess.TimeoutExpired:
            raise LauncherError(
                f"{argv[0]} did not answer within 300 s: is the Slurm controller up?"
            ) from None

    @staticmethod
    def _dependency_args(dependencies: Sequence[LaunchedJob]) -> list[str]:
        if not dependencies:
            return []
        ids = []
        for dep in dependencies:
            if not _JOB_ID.fullmatch(dep.launcher_job_id):
                raise LauncherError(
                    f"dependency {dep.jobdir.relpath} has launcher id {dep.launcher_job_id!r}, "
                    "not a Slurm job id: dependencies must be jobs of a Slurm launcher"
                )
            ids.append(dep.launcher_job_id)
        return [f"--dependency=afterok:{':'.join(ids)}", "--kill-on-invalid-dep=yes"]

    def _sbatch(self, args: list[str], script: Path, what: str) -> str:
        proc = self._run(["sbatch", "--parsable", *args, str(script)])
        if proc.returncode != 0:
            raise LauncherError(
                f"sbatch failed for {what} (exit {proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        # --parsable prints "id" or "id;cluster" (federations); ignore warnings before it.
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        job_id = lines[-1].split(";")[0].strip() if lines else ""
        if not job_id.isdigit():
            raise LauncherError(f"sbatch for {what} printed {proc.stdout.strip()!r}, not a job id")
        return job_id

    def _held(self) -> list[str]:
        """``--hold``: a job starts only once xpm has recorded its id and released it, so a
        crash between sbatch and that record leaves a held job that never runs, never a
        second copy of the job (unless ``options`` hold it already: then the user
        releases)."""
        return ["--hold"] if self.hold_until_released and not self.options.get("hold") else []

    def release(self, jobs: Sequence[LaunchedJob]) -> None:
        """Let ``jobs`` (submitted held, their ids now recorded) start: ``scontrol release``."""
        if not self._held():
            return
        for query in _id_lists(_array_ids([job.launcher_job_id for job in jobs])):
            proc = self._run(["scontrol", "release", ",".join(query)])
            if proc.returncode != 0:
                raise LauncherError(
                    f"scontrol release failed (exit {proc.returncode}): {proc.stderr.strip()}"
                )

    def cluster_limit(self, name: str) -> int:
        """The cluster's ``MaxArraySize`` or ``MaxJobCount``, read once from ``scontrol
        show config``; Slurm's defaults (1001, 10000) when it cannot be read."""
        if self._limits is None:
            self._limits = {"MaxArraySize": 1001, "MaxJobCount": 10000}
            try:
                proc = self._run(["scontrol", "show", "config"])
            except LauncherError:
                proc = None
            for line in proc.stdout.splitlines() if proc and proc.returncode == 0 else []:
                key, _, value = line.partition("=")
                if key.strip() in self._limits and value.strip().isdigit():
                    self._limits[key.strip()] = int(value.strip())
        return self._limits[name]

    @property
    def max_array_size(self) -> int:
        """Most jobs in one array: task ids go from 0 to ``MaxArraySize - 1``."""
        return max(1, self.cluster_limit("MaxArraySize"))

    # --- the launcher interface -------------------------------------------------------------
    def submit(
        self,
        jobdir: JobDir,
        command: list[str],
        env: dict[str, str],
        dependencies: list[LaunchedJob],
    ) -> LaunchedJob:
        """Write ``job.sh`` into the job directory and submit it with ``sbatch --parsable``."""
        text, argv = self.job_script(jobdir, command, env)
        atomic_write_text(jobdir.script, text)
        jobdir.script.chmod(0o755)
        job_id = self._sbatch(
            [*argv, *self._dependency_args(dependencies), *self._held()],
            jobdir.script,
            jobdir.relpath,
        )
        return LaunchedJob(jobdir, launcher_job_id=job_id)

    def submit_array(
        self,
        jobdirs: Sequence[JobDir],
        commands: Sequence[Sequence[str]],
        env: dict[str, str],
        array_dir: Path,
        dependencies: Sequence[LaunchedJob] = (),
        task_ids: Sequence[int] | None = None,
        aftercorr: str | None = None,
    ) -> list[LaunchedJob]:
        """Submit independent jobs as one Slurm job array (one ``sbatch`` call).

        Each job still gets its own ``job.sh`` (which writes the job's ``stdout.log`` and
        ``stderr.log``).  ``array_dir`` (created if needed) receives ``array.sh``, the
        script submitted to Slurm, ``index.sh``, the mapping from ``SLURM_ARRAY_TASK_ID``
        to job scripts, and Slurm's own per-task logs ``slurm-ARRAY_TASK.out``.  Returns one
        launched job per job directory, in order, with the id ``ARRAYID_TASKID``.

        ``task_ids`` numbers the tasks (default 0 to N-1); with ``aftercorr`` (the id of
        another array) task ``i`` waits for task ``i`` of that array to succeed
        (``--dependency=aftercorr:ID``), and is cancelled if it fails.
        """
        if len(jobdirs) != len(commands):
            raise LauncherError(
                f"submit_array got {len(jobdirs)} job directories but {len(commands)} commands"
            )
        if not jobdirs:
            return []
        array_dir = Path(array_dir).absolute()
        array_dir.mkdir(parents=True, exist_ok=True)
        index = ["# SLURM_ARRAY_TASK_ID -> job script (generated by xpm)", "XPM_ARRAY_TASKS=("]
        numbers = list(task_ids) if task_ids is not None else list(range(len(jobdirs)))
        if len(numbers) != len(jobdirs) or len(set(numbers)) != len(numbers):
            raise LauncherError(f"submit_array needs {len(jobdirs)} distinct task ids")
        for task_id, jobdir, command in zip(numbers, jobdirs, commands, strict=True):
            lines = [
                "#!/bin/bash",
                f"# xpm job {_printable(jobdir.relpath)}: task {task_id} of a Slurm job array",
                *self._body(jobdir.path, command, env, logs=jobdir),
            ]
            atomic_write_text(jobdir.script, "\n".join(lines) + "\n")
            jobdir.script.chmod(0o755)
            index.append(f"  [{task_id}]={shlex.quote(str(jobdir.script))}")
        index.append(")")
        index_file = array_dir / "index.sh"
        atomic_write_text(index_file, "\n".join(index) + "\n")

        spec = f"0-{len(jobdirs) - 1}" if task_ids is None else ",".join(map(str, numbers))
        if self.array_throttle is not None:
            spec += f"%{self.array_throttle}"
        name = _NAME_UNSAFE.sub("_", f"xpm-{jobdirs[0].task_id}-array")
        options: list[tuple[str, str | None]] = [
            ("job-name", name),
            ("array", spec),
            ("chdir", str(array_dir)),
            ("output", _output_pattern(array_dir) + "/slurm-%A_%a.out"),
            *self.sbatch_options(),
        ]
        header, argv = self._header(options)
        script = array_dir / "array.sh"
        lines = [
            "#!/bin/bash",
            f"# xpm job array of {len(jobdirs)} jobs: generated by the Slurm launcher",
            *header,
            "set -e",
            f". {shlex.quote(str(index_file))}",
            'exec bash -- "${XPM_ARRAY_TASKS[$SLURM_ARRAY_TASK_ID]}"',
        ]
        atomic_write_text(script, "\n".join(lines) + "\n")
        script.chmod(0o755)
        if aftercorr is not None and not aftercorr.isdigit():
            raise LauncherError(f"aftercorr needs a Slurm array id, not {aftercorr!r}")
        corresponding = [f"--dependency=aftercorr:{aftercorr}", "--kill-on-invalid-dep=yes"]
        array_id = self._sbatch(
            [
                *argv,
                *(corresponding if aftercorr else self._dependency_args(dependencies)),
                *self._held(),
            ],
            script,
            f"an array of {len(jobdirs)}",
        )
        return [
            LaunchedJob(jobdir, launcher_job_id=f"{array_id}_{i}")
            for i, jobdir in zip(numbers, jobdirs, strict=True)
        ]

    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        """The outcome of ``jobs``: one ``squeue`` call, then one ``sacct`` for the rest.

        Jobs neither command knows are left out of the answer.
        """
        ids = sorted({job.launcher_job_id for job in jobs})
        if not ids:
            return {}
        outcomes = self._squeue(ids)
        missing = [i for i in ids if i not in outcomes]
        if missing:
            outcomes.update(self._sacct(missing))
        # A pending array task cancelled on its own leaves no record anywhere (it is only
        # taken out of its array's pending set; no completion line, no accounting without
        # slurmdbd).  A task that never started, gone while Slurm still knows a sibling
        # (pending, running or just ended), is what that leaves; its siblings may well have
        # run and ended by the next poll, so whether they are pending does not matter.
        known_arrays = self._listed_arrays | {i.partition("_")[0] for i in outcomes if "_" in i}
        by_id = {job.launcher_job_id: job for job in jobs}
        for i in missing:
            if i in outcomes or i.partition("_")[0] not in known_arrays:
                continue
            if by_id[i].jobdir.read_status().state != "SUBMITTED":
                continue  # it started: lost, or its own markers say how it ended
            outcomes[i] = LaunchOutcome(
                "CANCELLED",
                "slurm: CANCELLED (taken out of its array while pending)",
                ended_by_backend=True,
            )
        return outcomes

    def _squeue(self, ids: list[str]) -> dict[str, LaunchOutcome]:
        outcomes: dict[str, LaunchOutcome] = {}
        self._listed_arrays = set()
        for query in _id_lists(_array_ids(ids)):  # one list, but for >3,000 separate jobs
            outcomes.update(self._squeue_list(query, set(ids)))
        return outcomes

    def _squeue_list(self, query: list[str], wanted: set[str]) -> dict[str, LaunchOutcome]:
        proc = self._run(
            [
                "squeue", "--noheader", "--states=all", "--array", f"--jobs={','.join(query)}",
                "--Format=JobArrayID:|,JobID:|,State:|,Reason:|,exit_code:|",
            ]
        )  # fmt: skip
        if proc.returncode != 0:
            if _INVALID_JOB_ID in proc.stderr:  # none of the ids is known any more
                return {}
            raise LauncherError(f"squeue failed (exit {proc.returncode}): {proc.stderr.strip()}")
        outcomes: dict[str, LaunchOutcome] = {}
        for line in proc.stdout.splitlines():
            fields = line.split("|")
            if len(fields) < 5:
                continue
            job_id, raw_id, state, reason, code = (f.strip() for f in fields[:5])
            if "_" in job_id:
                self._listed_arrays.add(job_id.partition("_")[0])  # a task not asked for too
            if job_id not in wanted:
                continue
            if raw_id and raw_id != job_id:
                self._raw_ids[job_id] = raw_id
            outcomes[job_id] = self._outcome(state, reason, code)
        return outcomes

    def _sacct(self, ids: list[str]) -> dict[str, LaunchOutcome]:
        """Finished jobs squeue forgot: ``sacct`` (``sacct -c`` without slurmdbd)."""
        fmt = ["--noheader", "--parsable2", "--format=JobID,State,ExitCode"]
        stdout: list[str] = []
        by_query = {i: i for i in ids}
        if not self._sacct_jobcomp:
            for query in _id_lists(_array_ids(ids)):  # sacct lists array tasks as A_i
                proc = self._run(["sacct", *fmt, "--allocations", f"--jobs={','.join(query)}"])
                if proc.returncode != 0 and "accounting storage is disabled" in proc.stderr:
                    self._sacct_jobcomp = True
                    break
                if proc.returncode != 0:
                    return {}  # no accounting at all: the scheduler reads the job directory
                self._sacct_jobcomp = False
                stdout.append(proc.stdout)
        if self._sacct_jobcomp:
            # The completion file knows array tasks by their raw ids only.
            by_query = {self._raw_ids.get(i, i): i for i in ids}
            for query in _id_lists(list(by_query)):
                proc = self._run(["sacct", "-c", *fmt, f"--jobs={','.join(query)}"])
                if proc.returncode != 0:
                    return {}
                stdout.append(proc.stdout)
        outcomes: dict[str, LaunchOutcome] = {}
        for line in "\n".join(stdout).splitlines():
            fields = line.split("|")
            if len(fields) < 3:
                continue
            listed, state, code = (f.strip() for f in fields[:3])
            job_id = by_query.get(listed)
            if job_id is None:
                continue
            # sacct writes "CANCELLED by 1000"; later lines (requeues) win.
            outcomes[job_id] = self._outcome(state.split(" ")[0], "", code)
        return outcomes

    @staticmethod
    def _outcome(slurm_state: str, reason: str, code: str) -> LaunchOutcome:
        slurm_state = slurm_state.rstrip("+")
        state = _STATE_MAP.get(slurm_state, "SUBMITTED")
        if state in ("SUBMITTED", "RUNNING"):
            detail = f" ({reason})" if reason and reason != "None" else ""
            return LaunchOutcome(state, f"slurm: {slurm_state}{detail}")
        exit_code, sig = _decode_exit(code)
        if state == "DONE":
            return LaunchOutcome(state, None, exit_code=exit_code or 0)
        if state == "CANCELLED" and reason == "DependencyNeverSatisfied":
            return LaunchOutcome(state, "dependency failed")
        return LaunchOutcome(
            state,
            f"slurm: {slurm_state}",
            # A FAILED job's own exit status; other kills rarely carry a meaningful one.
            exit_code=exit_code if not sig and (exit_code or slurm_state == "FAILED") else None,
            signal=sig,
            ended_by_backend=slurm_state in _ENDED_BY_SLURM,
        )

    def cancel(self, jobs: list[LaunchedJob]) -> None:
        """Cancel ``jobs`` with one ``scancel`` call (finished jobs are ignored by Slurm)."""
        ids = sorted({job.launcher_job_id for job in jobs})
        if not ids:
            return
        for query in _id_lists(ids):  # separate arguments, but ARG_MAX bounds their sum
            proc = self._run(["scancel", *query])
            if proc.returncode != 0:
                shown = " ".join(query[:5]) + (" ..." if len(query) > 5 else "")
                raise LauncherError(
                    f"scancel {shown} failed (exit {proc.returncode}): {proc.stderr.strip()}"
                )
