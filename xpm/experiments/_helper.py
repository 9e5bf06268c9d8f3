"""The helper passed to ``run(helper, cfg)`` and the function that runs an experiment file."""

from __future__ import annotations

import inspect
import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._vocabulary import DIRTY_POLICIES
from ..errors import ConfigError, StorageError, UsageError, UserCodeError, XpmError

if TYPE_CHECKING:
    from .._experiment import Experiment
    from ..launcherfinder import LauncherRegistry
    from ..launchers import Launcher
    from ._loader import PreparedExperiment

#: Values of ``dirty_git`` (passed to :func:`xpm.experiment` when it accepts the keyword).
#: Values of ``dirty_git`` (the vocabulary's dirty-tree policies).
DIRTY_GIT_MODES = DIRTY_POLICIES


class ExperimentHelper:
    """What ``run(helper, cfg)`` can use besides its configuration.

    ``helper.xp`` is the running :class:`xpm.Experiment`; ``workdir``, ``name`` and
    ``run_mode`` are its settings; :meth:`launcher` finds a launcher for a resource spec.
    """

    def __init__(self, xp: Experiment, yaml_path: Path | None = None) -> None:
        self.xp = xp
        #: The experiment YAML file that was run (None when built by hand).
        self.yaml_path = yaml_path
        self._registry: LauncherRegistry | None = None
        self._told_local: set[str] = set()

    @property
    def workdir(self) -> Path:
        """The workdir (absolute): job directories live in ``workdir/jobs``."""
        return self.xp.workdir

    @property
    def name(self) -> str:
        """The experiment name (the YAML's ``id:``, or its file stem)."""
        return self.xp.name

    @property
    def run_mode(self) -> str:
        """``normal``, ``generate`` or ``dry-run``."""
        return self.xp.run_mode

    @property
    def title(self) -> str | None:
        """The YAML's ``title:`` (recorded with the run), or None."""
        return self.xp.info.get("title")

    @property
    def description(self) -> str | None:
        """The YAML's ``description:`` (recorded with the run), or None."""
        return self.xp.info.get("description")

    @property
    def registry(self) -> LauncherRegistry:
        """The hosts :meth:`launcher` chooses from, read once (see :meth:`launcher`)."""
        if self._registry is None:
            from ..launcherfinder import load_registry

            beside = self.yaml_path.parent if self.yaml_path is not None else None
            self._registry = load_registry(self.workdir, beside=beside)
        return self._registry

    def launcher(self, spec: str, *, tags: Sequence[str] | None = None) -> Launcher | None:
        """A launcher for ``spec`` (e.g. ``"cuda(mem=16G) * 2 | cpu(cores=4)"``), or None.

        Hosts come from launchers.yaml: ``$XPM_LAUNCHERS``, then the one beside the
        experiment YAML, then the workdir's, then ``~/.config/xpm/launchers.yaml``; see
        :func:`xpm.launcherfinder.find_launcher`.  When no host fits, the first time for
        each spec a line says that the jobs given this None run on the local machine.
        """
        from ..launcherfinder import find_launcher

        found = find_launcher(spec, registry=self.registry, tags=tags)
        if found is None and spec not in self._told_local:
            self._told_local.add(spec)
            source = self.registry.source or "no launchers.yaml"
            self.xp._echo(
                f"xpm {self.name}: no host in {source} fits {spec!r}: helper.launcher() "
                "returned None, so jobs submitted with it run on the local machine "
                f"(`xpm launchers find {shlex.quote(spec)}{self._yaml_option}` says why; "
                "helper.require_launcher() raises instead)"
            )
        return found

    @property
    def _yaml_option(self) -> str:
        return f" --yaml {shlex.quote(str(self.yaml_path))}" if self.yaml_path else ""

    def require_launcher(self, spec: str, *, tags: Sequence[str] | None = None) -> Launcher:
        """Like :meth:`launcher`, but raises an error explaining why no host fits."""
        from ..launcherfinder import require_launcher

        return require_launcher(spec, registry=self.registry, tags=tags)

    def __repr__(self) -> str:
        return f"ExperimentHelper(name={self.name!r}, workdir={str(self.workdir)!r}, run_mode={self.run_mode!r})"


def _accepts(keyword: str) -> bool:
    from .._experiment import experiment

    return keyword in inspect.signature(experiment).parameters


def supports_dirty_git() -> bool:
    """Whether :func:`xpm.experiment` accepts ``dirty_git=``."""
    return _accepts("dirty_git")


def run_experiment_file(
    path: str | os.PathLike[str],
    *,
    overrides: Iterable[str] = (),
    run_mode: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    max_parallel: int | None = None,
    dirty_git: str | None = None,
    detach: bool = False,
) -> Experiment:
    """Run an experiment YAML file: check everything, then ``run(helper, cfg)`` in an experiment.

    Raises :class:`xpm.errors.UsageError` (nothing written) when the YAML, an override or
    the configuration is wrong, and :class:`xpm.errors.JobsFailedError` when jobs failed.
    """
    from ._loader import prepare

    if dirty_git is not None:
        if dirty_git not in DIRTY_GIT_MODES:
            raise UsageError(f"dirty_git={dirty_git!r}: use one of {', '.join(DIRTY_GIT_MODES)}")
        if not supports_dirty_git():
            raise UsageError(
                "--dirty-git is not supported by this version of xpm.experiment(); drop it"
            )
    if max_parallel is not None and max_parallel < 1:
        raise UsageError(f"max_parallel={max_parallel}: give a positive integer")
    prepared = prepare(path, overrides=overrides, run_mode=run_mode, workdir=workdir)
    return run_prepared(
        prepared,
        max_parallel=max_parallel,
        dirty_git=dirty_git or prepared.source.dirty_git,
        detach=detach,
    )


def run_prepared(
    prepared: PreparedExperiment,
    *,
    max_parallel: int | None = None,
    dirty_git: str | None = None,
    detach: bool = False,
) -> Experiment:
    """Run a checked experiment (see :func:`xpm.experiments.prepare`)."""
    from .._experiment import experiment

    extra: dict[str, Any] = {"dirty_git": dirty_git} if dirty_git is not None else {}
    if detach:
        extra["detach"] = True
    if _accepts("code_paths"):
        # The code is the experiment module and its YAML files, not the xpm script.
        module_file = getattr(prepared.run, "__code__", None)
        paths = [prepared.source.path]
        if module_file is not None:
            paths.insert(0, Path(module_file.co_filename))
        extra["code_paths"] = paths
    xp = experiment(
        prepared.workdir,
        prepared.name,
        prepared.run_mode,
        max_parallel=max_parallel,
        **extra,
    )
    helper = ExperimentHelper(xp, prepared.source.path)
    # The first line of the run says where it writes and which hosts file it uses: a
    # workdir or launchers.yaml other than the one meant is seen before any job runs.
    xp.workdir_reason = prepared.workdir_reason
    xp.start_notes.append(_launchers_note(helper))
    try:
        with xp:
            xp.info.setdefault("yaml", str(prepared.source.path))
            xp.info.update(prepared.description)
            try:
                prepared.run(helper, prepared.config)
            except ConfigError as error:
                _add_user_location(error)
                raise
    except StorageError:
        raise
    except Exception as error:
        from .._storage import first_storage_error, storage_error

        full = first_storage_error(error)
        if full is None:
            if isinstance(error, (XpmError, OSError)):
                raise
            raise _user_code_error(error) from error
        states = [job.state for job in xp.jobs.values()]
        raise storage_error(
            full, prepared.workdir, experiment=prepared.name, job_states=states
        ) from error
    return xp


def _add_user_location(error: BaseException) -> None:
    """Append where the user's code raised ``error`` (``(experiment.py:12)``): a wrong
    parameter in run() is reported in one line, and that line must say which line of the
    user's module made it.  The innermost frame outside the xpm package is the one."""
    import traceback

    package = str(Path(__file__).resolve().parent.parent)
    where = None
    for frame in traceback.extract_tb(error.__traceback__):
        if not str(Path(frame.filename).resolve()).startswith(package + os.sep):
            where = f"{frame.filename}:{frame.lineno}"
    if where is not None and error.args and isinstance(error.args[0], str):
        error.args = (f"{error.args[0]} (at {where})", *error.args[1:])


def _user_code_error(error: Exception) -> UserCodeError:
    """``error`` raised by the experiment's own code, told as such: the exception and the
    frames of the user's code (outside the xpm package), as Python would show them, so
    that the line to fix is on screen without ``--debug``."""
    import traceback

    package = str(Path(__file__).resolve().parent.parent)
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not str(Path(frame.filename).resolve()).startswith(package + os.sep)
    ]
    text = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    lines = "".join(traceback.format_list(frames)).rstrip()
    where = f"\nTraceback (your code, innermost last):\n{lines}" if lines else ""
    return UserCodeError(f"the experiment's run() raised {message}{where}")


def _launchers_note(helper: ExperimentHelper) -> str:
    """Which launchers.yaml ``helper.launcher()`` reads, or that there is none.  The file is
    read here, before the run writes anything: a broken one (bad YAML, an unknown key) is a
    mistake to fix now, not an error halfway through ``run()`` after jobs were written."""
    from ..errors import LauncherError
    from ..launcherfinder import find_launchers_file

    beside = helper.yaml_path.parent if helper.yaml_path is not None else None
    try:
        source = find_launchers_file(helper.workdir, beside=beside)
    except LauncherError as error:
        return str(error)
    if source is None:
        return "no launchers.yaml (local machine only)"
    helper.registry  # noqa: B018 - loads and checks it (LauncherError: exit 2)
    return f"hosts from {source}"
