"""The Slurm launcher: job scripts submitted with ``sbatch``, batched ``squeue`` polls.

Each job gets a bash script in its job directory (``job.sh``) that Slurm runs on a
compute node.  Dependencies between jobs are handed to Slurm (``--dependency=afterok``)
so a submitted plan keeps running after the experiment process exits.  One ``squeue``
call reports on every job of a poll; jobs that have left the queue are looked up with
one ``sacct`` call.  Many independent jobs can go out as one job array
(:meth:`SlurmLauncher.submit_array`).

This module owns the launcher's options and the Slurm commands it runs (``sbatch``,
``scontrol``, ``scancel``); the scripts are written by ``_slurmscript``, and what
``squeue``/``sacct`` say of the jobs is read by ``_slurmstate``.
"""

from __future__ import annotations

import difflib
import inspect
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .._atomicio import atomic_write_text
from .._jobdir import JobDir
from ..errors import BackendFullError, LauncherError
from ._base import LaunchedJob, Launcher, LaunchOutcome
from ._slurmhosts import HOST_KEYS, SlurmHostSettings, describe_host, read_host_settings
from ._slurmscript import job_script, write_array_script, write_task_scripts
from ._slurmstate import SlurmQueue, array_ids, id_lists

if TYPE_CHECKING:
    from ..launcherfinder import Host, HostEntry, Requirement

__all__ = ["SlurmLauncher"]

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

_JOB_ID = re.compile(r"[0-9]+(_[0-9]+)?")

#: What sbatch says when the controller holds ``MaxJobCount`` jobs (it retries for two
#: minutes first), and when a QOS or association limit on queued jobs is reached: the
#: submission waits for room instead of failing its jobs.
_FULL = ("MaxJobCount", "Resource temporarily unavailable")
_OVER_OWN_LIMIT = ("Job violates accounting/QOS policy", "MaxSubmitJobs", "AssocMaxSubmitJob")
#: What sbatch says of options it will refuse every time (a partition, account or QOS
#: that does not exist, a bad time or memory): the next submission is not tried.
_REFUSED_OPTIONS = ("Invalid partition", "Invalid account", "Invalid qos", "Invalid --time",
                    "Invalid --mem", "Invalid generic resource", "invalid partition")  # fmt: skip
#: Slurm's --time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
#: days-hours:minutes, days-hours:minutes:seconds; or no limit.
_TIME = re.compile(r"(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2}|UNLIMITED|INFINITE)")


def slurm_time(seconds: int) -> str:
    """A Slurm ``--time`` value (``D-HH:MM:SS``), rounded up to whole minutes."""
    minutes = -(-seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:00"


def slurm_mem(size: int) -> str:
    """A Slurm ``--mem`` value.  Slurm's M/G are binary: round up to whole MiB."""
    mebibytes = -(-size // 1024**2)
    if mebibytes % 1024 == 0:
        return f"{mebibytes // 1024}G"
    return f"{mebibytes}M"


def _to_option_name(key: str) -> str:
    return key.replace("_", "-").lstrip("-")


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
    backend_name: ClassVar[str] = "Slurm"
    cancel_command: ClassVar[str] = "scancel"
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
        if time is not None and not _TIME.fullmatch(str(time)):
            raise LauncherError(
                f"time={time!r} is not a Slurm time limit: write minutes (90), H:MM:SS "
                "(1:30:00) or D-HH:MM:SS (2-00:00:00)"
            )
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
        #: What squeue and sacct said of the jobs, and what they taught between polls.
        self._queue = SlurmQueue(self._run)
        #: Why sbatch refused this launcher's options (every later submission would be too).
        self._refused: str | None = None
        #: The cluster's limits from ``scontrol show config`` (read once, when needed).
        self._limits: dict[str, int] | None = None

    # --- options ----------------------------------------------------------------------------
    #: A launchers.yaml host's own keys, read and given their defaults by ``_slurmhosts``.
    host_keys: ClassVar[tuple[str, ...]] = HOST_KEYS

    @classmethod
    def host_settings(cls, entry: HostEntry) -> dict[str, Any]:
        """The partition, account, qos, constraint, gpu_request and sbatch options the
        launchers.yaml host ``entry`` sets, checked."""
        return read_host_settings(entry)

    @classmethod
    def describe_host(cls, host: Host) -> list[str]:
        """The host's partition, when its ``partition`` key sets one."""
        return describe_host(host)

    @classmethod
    def options_for(cls, host: Host, requirement: Requirement) -> dict[str, Any]:
        """The partition (the host's name by default), the host's account, qos, constraint
        and sbatch options, and time/cpus/mem/GPUs from the requirement.  GPUs go to
        ``gpus`` (``--gres=gpu:N``), or to ``options["gpus"]`` (``--gpus=N``) for a host
        with ``gpu_request: gpus``."""
        settings = SlurmHostSettings.of(host)
        options: dict[str, Any] = dict(settings.options)
        gpus: int | None = len(requirement.accelerators) or None
        if gpus is not None and settings.gpu_request == "gpus":
            options["gpus"] = gpus
            gpus = None
        duration, mem = requirement.duration, requirement.cpu.mem
        return {
            "partition": settings.partition_of(host),
            "time": slurm_time(duration) if duration is not None else None,
            "cpus_per_task": requirement.cpu.cores,
            "mem": slurm_mem(mem) if mem is not None else None,
            "gpus": gpus,
            "account": settings.account,
            "qos": settings.qos,
            "constraint": settings.constraint,
            "options": options,
        }

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
        # SlurmLauncher's own options, with its defaults: a subclass may take others (which
        # it describes itself) or none, and its class is recorded beside these.
        params = inspect.signature(SlurmLauncher.__init__).parameters
        for name in SlurmLauncher.option_names():
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
    def job_script(
        self, jobdir: JobDir, command: Sequence[str], env: dict[str, str]
    ) -> tuple[str, list[str]]:
        """The text of ``job.sh`` for one job and the sbatch arguments it needs.

        Deterministic: the same inputs give the same text.
        """
        return job_script(jobdir, command, env, self.sbatch_options())

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
        if self._refused is not None:
            raise LauncherError(self._refused)  # the same options, refused already
        proc = self._run(["sbatch", "--parsable", *args, str(script)])
        if proc.returncode != 0:
            # One line: sbatch often writes its refusal twice ("sbatch: error: ...").
            said = "; ".join(
                dict.fromkeys(
                    line.strip()
                    for line in (proc.stderr or proc.stdout).splitlines()
                    if line.strip()
                )
            )
            if any(words in said for words in _FULL + _OVER_OWN_LIMIT):
                raise BackendFullError(
                    f"Slurm has no room for {what} now ({said.splitlines()[-1]})",
                    own_jobs_free_it=not any(words in said for words in _FULL),
                )
            if any(words in said for words in _REFUSED_OPTIONS):
                self._refused = f"sbatch refused this launcher's options: {said}"
                raise LauncherError(self._refused)
            raise LauncherError(f"sbatch failed for {what} (exit {proc.returncode}): {said}")
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
        for query in id_lists(array_ids([job.launcher_job_id for job in jobs])):
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

    def room(self) -> int:
        """How many more jobs the controller accepts: ``MaxJobCount`` less the jobs it holds
        (one ``squeue`` of every job, each array task counted, finished ones kept
        ``MinJobAge`` seconds too), less one (Slurm refuses a submission that would reach
        the limit) and a reserve of 1% left to the cluster's other users."""
        limit = self.cluster_limit("MaxJobCount")
        proc = self._run(["squeue", "--noheader", "--all", "--array", "--states=all", "-o", "%i"])
        if proc.returncode != 0:
            raise LauncherError(
                f"squeue failed (exit {proc.returncode}) counting the cluster's jobs: "
                f"{proc.stderr.strip()}"
            )
        held = sum(1 for line in proc.stdout.splitlines() if line.strip())
        return max(0, limit - held - 1 - limit // 100)

    @property
    def max_array_size(self) -> int:
        """Most jobs in one array: task ids go from 0 to ``MaxArraySize - 1``."""
        return max(1, self.cluster_limit("MaxArraySize"))

    # --- the launcher interface -------------------------------------------------------------
    def submit(self, jobdir: JobDir, dependencies: Sequence[LaunchedJob] = ()) -> LaunchedJob:
        """Write ``job.sh`` into the job directory and submit it with ``sbatch --parsable``."""
        text, argv = self.job_script(jobdir, self.job_command(jobdir), self.job_environment())
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
        if not jobdirs:
            return []
        commands = [self.job_command(jobdir) for jobdir in jobdirs]
        env = self.job_environment()
        array_dir = Path(array_dir).absolute()
        array_dir.mkdir(parents=True, exist_ok=True)
        numbers = list(task_ids) if task_ids is not None else list(range(len(jobdirs)))
        if len(numbers) != len(jobdirs) or len(set(numbers)) != len(numbers):
            raise LauncherError(f"submit_array needs {len(jobdirs)} distinct task ids")
        index_file = write_task_scripts(array_dir, jobdirs, commands, env, numbers)

        spec = f"0-{len(jobdirs) - 1}" if task_ids is None else ",".join(map(str, numbers))
        if self.array_throttle is not None:
            spec += f"%{self.array_throttle}"
        script, argv = write_array_script(
            array_dir, index_file, jobdirs, spec, self.sbatch_options()
        )
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
        return self._queue.poll(jobs)

    def cancel(self, jobs: list[LaunchedJob]) -> None:
        """Cancel ``jobs`` with one ``scancel`` call (finished jobs are ignored by Slurm)."""
        ids = sorted({job.launcher_job_id for job in jobs})
        if not ids:
            return
        for query in id_lists(ids):  # separate arguments, but ARG_MAX bounds their sum
            proc = self._run(["scancel", *query])
            if proc.returncode != 0:
                shown = " ".join(query[:5]) + (" ..." if len(query) > 5 else "")
                raise LauncherError(
                    f"scancel {shown} failed (exit {proc.returncode}): {proc.stderr.strip()}"
                )
