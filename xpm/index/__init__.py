"""The SQLite index of a workdir: every job, its parameters, tags, results and git state.

The job directories are the truth; the index (``WORKDIR/xpm.db``, or ``$XPM_INDEX``) is a
derived, documented view of them (docs/index.md) that :func:`rebuild` recreates at any
time.  Experiment processes write it (:mod:`xpm.index._recorder`); job processes never
open it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._canned import (
        CANNED_QUERIES,
    )
    from ._chartdata import (
        MAX_CHART_JOBS,
        column_values,
        stepped_results,
    )
    from ._comparison import (
        compared_curves,
        compared_params,
        telling_tags,
    )
    from ._curves import CurveAverages, StepMean, reporting, step_means
    from ._db import ENV_INDEX, REBUILD_HINT, IndexDB, check_header, index_path, readonly_uri
    from ._details import (
        JobDetails,
        downstream_jobs,
        find_job_row,
        jobs_by_ids,
        read_job_details,
    )
    from ._experimentjobs import TaskJobs, experiment_jobs
    from ._ingest import rebuild, write_jobs
    from ._jobsfacets import (
        FACET_COLUMNS,
        column_facet_sql,
        experiment_facet_sql,
        jobs_table_filters,
        tags_facet_sql,
    )
    from ._keptvalues import ChartValues, KeptValues
    from ._live import state_counts
    from ._lookup import (
        delete_job_rows,
        experiment_names,
        experiment_runs,
        experiments_summary,
        jobs_at_commits,
        jobs_with_params_like,
        latest_results,
    )
    from ._names import filter_hints
    from ._nomatch import no_match
    from ._overview import (
        active_job_count,
        experiment_tasks,
        experiments_newest_first,
        experiments_overview,
        has_experiment,
        jobs_in_state,
        runs_with_commits,
        tell_apart,
    )
    from ._query import (
        Mismatch,
        check,
        find_job,
        list_jobs,
        parse_tag_value,
        reconcile,
        rows_for_jobs,
    )
    from ._recorder import attach, detach
    from ._results import results
    from ._rows import flatten_params, read_job, read_results
    from ._runcolumns import COLUMN_SAMPLE, task_columns, upstream_columns
    from ._runtables import FIXED as FIXED_COLUMNS
    from ._runtables import (
        MAX_PAGE_SIZE,
        PAGE_SIZE,
        Column,
        Selection,
        column_key,
        distinct_values,
        facets,
        job_count,
        ordered_ids,
        other_reading,
        page_rows,
        parse_filter,
        parse_filters,
        runs_table,
    )
    from ._schemadoc import datasette_metadata, render_markdown
    from ._settle import settle_workdir
    from ._stepreports import StepReport, reports_at_step
    from ._sweeps import (
        experiment_keys,
        sweep_queries,
    )
    from ._tasktables import datasette_metadata as task_tables_metadata
    from ._tasktables import forget_jobs
    from ._tasktables import render_markdown as task_tables_markdown
    from ._upstream import UPSTREAM, upstream_values
    from ._usersql import run_query, schema_text
    from ._version import SCHEMA_VERSION
    from ._writecount import KeptByWrites, columns_fingerprint, jobs_writes, settings_writes

# Loaded on first use: a command that only reads an up-to-date index never pays for the
# schema definitions or the ingest code.
_LAZY = {
    "ENV_INDEX": "._db",
    "IndexDB": "._db",
    "index_path": "._db",
    "rebuild": "._ingest",
    "Mismatch": "._query",
    "check": "._query",
    "find_job": "._query",
    "list_jobs": "._query",
    "parse_tag_value": "._query",
    "reconcile": "._query",
    "datasette_metadata": "._schemadoc",
    "render_markdown": "._schemadoc",
    "SCHEMA_VERSION": "._version",
    # What the rest of xpm uses (no other package imports an underscore module of this one).
    "REBUILD_HINT": "._db",
    "check_header": "._db",
    "readonly_uri": "._db",
    "write_jobs": "._ingest",
    "JobDetails": "._details",
    "downstream_jobs": "._details",
    "find_job_row": "._details",
    "jobs_by_ids": "._details",
    "read_job_details": "._details",
    "state_counts": "._live",
    "jobs_at_commits": "._lookup",
    "latest_results": "._lookup",
    "jobs_with_params_like": "._lookup",
    "experiments_summary": "._lookup",
    "experiment_names": "._lookup",
    "experiment_runs": "._lookup",
    "delete_job_rows": "._lookup",
    "run_query": "._usersql",
    "schema_text": "._usersql",
    "filter_hints": "._names",
    "rows_for_jobs": "._query",
    "attach": "._recorder",
    "detach": "._recorder",
    "results": "._results",
    "flatten_params": "._rows",
    "read_job": "._rows",
    "read_results": "._rows",
    "settle_workdir": "._settle",
    "forget_jobs": "._tasktables",
    "task_tables_metadata": "._tasktables:datasette_metadata",
    "task_tables_markdown": "._tasktables:render_markdown",
    # What the web view reads (xpm.datasette): runs tables, charts, upstream values.
    "COLUMN_SAMPLE": "._runcolumns",
    "FIXED_COLUMNS": "._runtables:FIXED",
    "MAX_PAGE_SIZE": "._runtables",
    "PAGE_SIZE": "._runtables",
    "Column": "._runtables",
    "Selection": "._runtables",
    "TaskJobs": "._experimentjobs",
    "experiment_jobs": "._experimentjobs",
    "distinct_values": "._runtables",
    "facets": "._runtables",
    "job_count": "._runtables",
    "page_rows": "._runtables",
    "parse_filter": "._runtables",
    "parse_filters": "._runtables",
    "ordered_ids": "._runtables",
    "other_reading": "._runtables",
    "column_key": "._runtables",
    "runs_table": "._runtables",
    "no_match": "._nomatch",
    "task_columns": "._runcolumns",
    "upstream_columns": "._runcolumns",
    "MAX_CHART_JOBS": "._chartdata",
    "StepMean": "._curves",
    "CurveAverages": "._curves",
    "KeptValues": "._keptvalues",
    "KeptByWrites": "._writecount",
    "jobs_writes": "._writecount",
    "settings_writes": "._writecount",
    "columns_fingerprint": "._writecount",
    "ChartValues": "._keptvalues",
    "column_values": "._chartdata",
    "reporting": "._curves",
    "step_means": "._curves",
    "stepped_results": "._chartdata",
    "UPSTREAM": "._upstream",
    "upstream_values": "._upstream",
    # The web view's lists of jobs and experiments (home, experiment and chart pages).
    "active_job_count": "._overview",
    "tell_apart": "._overview",
    "experiment_tasks": "._overview",
    "experiments_newest_first": "._overview",
    "experiments_overview": "._overview",
    "has_experiment": "._overview",
    "jobs_in_state": "._overview",
    "runs_with_commits": "._overview",
    # The sweep_<experiment> canned queries of the web view.
    "experiment_keys": "._sweeps",
    "sweep_queries": "._sweeps",
    # The web view's comparison of jobs.
    "compared_curves": "._comparison",
    "telling_tags": "._comparison",
    "compared_params": "._comparison",
    "StepReport": "._stepreports",
    "reports_at_step": "._stepreports",
    # The web view's canned queries (their SQL is shown to the user).
    "CANNED_QUERIES": "._canned",
    # The filters and facets of the web view's jobs table (/xpm/jobs).
    "FACET_COLUMNS": "._jobsfacets",
    "column_facet_sql": "._jobsfacets",
    "experiment_facet_sql": "._jobsfacets",
    "jobs_table_filters": "._jobsfacets",
    "tags_facet_sql": "._jobsfacets",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def open_index(workdir: str | os.PathLike[str], readonly: bool = False) -> IndexDB:
    """Open (and create or upgrade, unless ``readonly``) the index of ``workdir``.

    Use it as a context manager; ``.conn`` is the :mod:`sqlite3` connection, ``.db`` its
    sqlite-utils wrapper, ``.query(sql, params)`` returns rows.  A damaged file raises
    :class:`~xpm.errors.IndexDatabaseError` naming ``xpm index rebuild``.
    """
    from ._db import IndexDB

    return IndexDB(workdir, readonly=readonly)


__all__ = [
    "CANNED_QUERIES",
    "COLUMN_SAMPLE",
    "Column",
    "ENV_INDEX",
    "FACET_COLUMNS",
    "ChartValues",
    "CurveAverages",
    "FIXED_COLUMNS",
    "IndexDB",
    "JobDetails",
    "KeptByWrites",
    "KeptValues",
    "MAX_CHART_JOBS",
    "MAX_PAGE_SIZE",
    "Mismatch",
    "PAGE_SIZE",
    "REBUILD_HINT",
    "SCHEMA_VERSION",
    "Selection",
    "StepMean",
    "StepReport",
    "TaskJobs",
    "UPSTREAM",
    "active_job_count",
    "attach",
    "check",
    "check_header",
    "column_facet_sql",
    "column_values",
    "columns_fingerprint",
    "compared_curves",
    "compared_params",
    "datasette_metadata",
    "delete_job_rows",
    "detach",
    "distinct_values",
    "downstream_jobs",
    "experiment_facet_sql",
    "experiment_jobs",
    "experiment_keys",
    "experiment_names",
    "experiment_runs",
    "experiment_tasks",
    "experiments_newest_first",
    "experiments_overview",
    "experiments_summary",
    "facets",
    "filter_hints",
    "find_job",
    "find_job_row",
    "flatten_params",
    "forget_jobs",
    "has_experiment",
    "index_path",
    "job_count",
    "jobs_at_commits",
    "jobs_by_ids",
    "jobs_in_state",
    "jobs_writes",
    "jobs_table_filters",
    "jobs_with_params_like",
    "latest_results",
    "list_jobs",
    "open_index",
    "page_rows",
    "parse_filter",
    "parse_filters",
    "ordered_ids",
    "other_reading",
    "column_key",
    "parse_tag_value",
    "read_job",
    "read_job_details",
    "read_results",
    "readonly_uri",
    "rebuild",
    "reconcile",
    "render_markdown",
    "reporting",
    "reports_at_step",
    "results",
    "rows_for_jobs",
    "run_query",
    "runs_table",
    "no_match",
    "runs_with_commits",
    "schema_text",
    "settings_writes",
    "settle_workdir",
    "state_counts",
    "step_means",
    "stepped_results",
    "sweep_queries",
    "tags_facet_sql",
    "task_columns",
    "upstream_columns",
    "task_tables_markdown",
    "task_tables_metadata",
    "telling_tags",
    "tell_apart",
    "upstream_values",
    "write_jobs",
]
