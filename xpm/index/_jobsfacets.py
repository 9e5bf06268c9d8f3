"""The SQL of the web view's jobs table (``/xpm/jobs``) beyond Datasette's own: the
``?_tag=key=value`` and ``?_experiment=name`` filters, and the facets counting the jobs
of the page per task, state, tag and experiment.

Facets count over the table page's SQL (Datasette's, with the page's filters) or, for
the unfiltered table, over every job: the index's indexes then serve the count instead
of each row being tested against the list of all jobs.
"""

from __future__ import annotations

from typing import Any

#: The columns of ``jobs`` a column facet counts by.
FACET_COLUMNS = ("task_id", "state")


def jobs_table_filters(
    tags: list[str], experiments: list[str]
) -> tuple[list[str], dict[str, Any], list[str]]:
    """The conditions on ``jobs`` of ``?_tag=key=value`` (each of ``tags``: a value as the
    CLI's ``--tag`` reads it) and ``?_experiment=name`` (each of ``experiments``), their
    named parameters, and how each reads (``tag lr = 0.1``); a tag without ``=`` is left
    out."""
    from ._query import parse_tag_value

    where: list[str] = []
    params: dict[str, Any] = {}
    human: list[str] = []
    for i, text in enumerate(tags):
        key, sep, value = text.partition("=")
        if not sep:
            continue
        candidates = parse_tag_value(value)
        names = []
        for j, candidate in enumerate(candidates):
            params[f"xpm_tag_{i}_{j}"] = candidate
            names.append(f":xpm_tag_{i}_{j}")
        params[f"xpm_tag_{i}"] = key
        where.append(
            f"id IN (SELECT job_id FROM tags WHERE key = :xpm_tag_{i} "
            f"AND value IN ({', '.join(names)}))"
        )
        human.append(f"tag {key} = {value}")
    for i, name in enumerate(experiments):
        params[f"xpm_experiment_{i}"] = name
        where.append(
            f"id IN (SELECT s.job_id FROM submissions s JOIN runs r ON r.id = s.run "
            f"WHERE r.experiment = :xpm_experiment_{i})"
        )
        human.append(f"experiment = {name}")
    return where, params, human


def _jobs_of(table_sql: str | None) -> str | None:
    """The ids of the jobs of a table page (its SQL; None: every job, no condition)."""
    return f"SELECT id FROM ({table_sql})" if table_sql is not None else None


def column_facet_sql(column: str, table_sql: str | None, limit: int) -> str:
    """``(value, count)`` of the jobs of ``table_sql`` (None: all jobs) per value of
    ``column`` (one of :data:`FACET_COLUMNS`), the most frequent first, ``limit`` rows."""
    if column not in FACET_COLUMNS:
        raise ValueError(f"no facet on jobs.{column}: one of {', '.join(FACET_COLUMNS)}")
    jobs_sql = _jobs_of(table_sql)
    where = f"WHERE id IN ({jobs_sql}) " if jobs_sql else ""
    return (
        f"SELECT {column} AS value, COUNT(*) AS count FROM jobs {where}"
        f"GROUP BY {column} ORDER BY count DESC, value LIMIT {limit}"
    )


def tags_facet_sql(table_sql: str | None, limit: int) -> str:
    """``(key=value, count)`` of the jobs of ``table_sql`` (None: all jobs) per tag, by
    key and value, ``limit`` rows."""
    jobs_sql = _jobs_of(table_sql)
    where = f"WHERE job_id IN ({jobs_sql}) " if jobs_sql else ""
    return (
        # Only key and value: the index (key, value, job_id) answers it alone (a bool
        # shows as 1/0, which ?_tag= matches too).  A whole float reads as the plugin's
        # pages show it (wd=0, not wd=0.0; 1e+16 stays so); ?_tag=wd=0 matches 0.0.
        "SELECT key || '=' || CASE WHEN typeof(value) = 'real' AND abs(value) < 1e15 AND "
        "value = CAST(value AS INTEGER) THEN CAST(CAST(value AS INTEGER) AS TEXT) "
        "ELSE value END AS value, "
        "COUNT(*) AS count FROM tags "
        f"{where}GROUP BY key, tags.value ORDER BY key, tags.value LIMIT {limit}"
    )


def experiment_facet_sql(table_sql: str | None, limit: int) -> str:
    """``(experiment, count)`` of the jobs of ``table_sql`` (None: all jobs) per experiment
    of the runs that submitted them, the most jobs first, ``limit`` rows."""
    jobs_sql = _jobs_of(table_sql)
    if jobs_sql is None:
        # Every job: an experiment of one run submitted each of its jobs once, so its
        # count is its run's submissions, read from their index; only experiments of
        # several runs need their jobs told apart (all of them: 45-90 ms, 100,000 jobs).
        return (
            "SELECT value, count FROM ("
            "SELECT r.experiment AS value, COUNT(*) AS count FROM runs r "
            "CROSS JOIN submissions s ON s.run = r.id WHERE r.experiment IN "
            "(SELECT experiment FROM runs GROUP BY experiment HAVING COUNT(*) = 1) "
            "GROUP BY r.experiment UNION ALL "
            "SELECT r.experiment, COUNT(DISTINCT s.job_id) FROM runs r "
            "CROSS JOIN submissions s ON s.run = r.id WHERE r.experiment IN "
            "(SELECT experiment FROM runs GROUP BY experiment HAVING COUNT(*) > 1) "
            f"GROUP BY r.experiment) ORDER BY count DESC, value LIMIT {limit}"
        )
    return (
        "SELECT r.experiment AS value, COUNT(DISTINCT s.job_id) AS count FROM submissions s "
        f"JOIN runs r ON r.id = s.run WHERE s.job_id IN ({jobs_sql}) "
        f"GROUP BY r.experiment ORDER BY count DESC, value LIMIT {limit}"
    )
