"""The operations on a workdir: which workdir a command uses, selecting its jobs,
reconciling them with their launcher, killing, cleaning and inspecting them.

The library behind ``xpm jobs ...`` and ``xpm experiments ...``: the command line parses
its options, calls one function of this package and renders what it returns.  The SQL
these functions need lives in :mod:`xpm.index`; the job-directory layout in
:class:`xpm._jobdir.JobDir`.

- :func:`locate_workdir` / :func:`resolve_workdir` / :func:`existing_workdir`: the one rule
  for finding the workdir (``--workdir``, ``workdir:``, ``$XPM_WORKDIR``, the git root).
- :func:`select_jobs`, :func:`find_job`, :func:`jobs_for`: jobs matching filters or names,
  reconciled with their directories and their launcher (:func:`reconcile_launchers`).
- :func:`kill_jobs`, :func:`plan_clean` / :func:`clean`: stop jobs, remove their
  directories (never leaving ``WORKDIR/jobs``, never following a symbolic link).
- :func:`job_details`, :func:`list_experiments`, :func:`experiment_details`: what
  ``xpm jobs show`` and ``xpm experiments list|show`` print.

Names load on first use: ``xpm.experiments`` needs only the workdir rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._locate import (
    DEFAULT_WORKDIR,
    WORKDIR_ENV,
    existing_workdir,
    git_root,
    locate_workdir,
    no_index_hint,
    reproduction_dir,
    resolve_workdir,
)

if TYPE_CHECKING:
    from ._clean import CleanItem, clean, plan_clean, safe_job_path
    from ._inspect import (
        checkout_commands,
        experiment_details,
        job_details,
        list_experiments,
        param_kinds,
        rerun_program,
    )
    from ._kill import KILL_GRACE, KillResult, kill_jobs
    from ._reconcile import reconcile_launchers
    from ._select import (
        JobFilter,
        attach_results,
        find_job,
        jobs_for,
        no_match_hints,
        parse_since,
        parse_tags,
        select_jobs,
    )

_LAZY = {
    "CleanItem": "._clean",
    "clean": "._clean",
    "plan_clean": "._clean",
    "safe_job_path": "._clean",
    "checkout_commands": "._inspect",
    "experiment_details": "._inspect",
    "job_details": "._inspect",
    "param_kinds": "._inspect",
    "list_experiments": "._inspect",
    "rerun_program": "._inspect",
    "KILL_GRACE": "._kill",
    "KillResult": "._kill",
    "kill_jobs": "._kill",
    "reconcile_launchers": "._reconcile",
    "JobFilter": "._select",
    "attach_results": "._select",
    "find_job": "._select",
    "jobs_for": "._select",
    "no_match_hints": "._select",
    "parse_since": "._select",
    "parse_tags": "._select",
    "select_jobs": "._select",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = [
    "DEFAULT_WORKDIR",
    "KILL_GRACE",
    "WORKDIR_ENV",
    "CleanItem",
    "JobFilter",
    "KillResult",
    "attach_results",
    "checkout_commands",
    "clean",
    "existing_workdir",
    "experiment_details",
    "find_job",
    "git_root",
    "job_details",
    "param_kinds",
    "jobs_for",
    "kill_jobs",
    "list_experiments",
    "locate_workdir",
    "no_index_hint",
    "no_match_hints",
    "reproduction_dir",
    "parse_since",
    "parse_tags",
    "plan_clean",
    "reconcile_launchers",
    "rerun_program",
    "resolve_workdir",
    "safe_job_path",
    "select_jobs",
]
