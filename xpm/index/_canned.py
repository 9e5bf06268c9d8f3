"""The canned queries the web view offers (Datasette shows their SQL, and runs them
read-only): recent jobs, failed jobs with their stderr's last lines, two jobs'
parameters side by side, the jobs of a git commit.

(Each experiment's sweep query depends on its tags and results: :mod:`._sweeps`.)
"""

from __future__ import annotations

from typing import Any

#: Canned queries (read-only SQL; ``:name`` are parameters typed in the page).
CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "recent_jobs": {
        "title": "Recent jobs",
        "description": "The 100 most recently submitted jobs with their experiment, tags and latest results.",
        "sql": (
            "SELECT j.id, j.task_id, j.state, j.submit_time AS submitted,\n"
            "  r.experiment,\n"
            "  (SELECT json_group_object(t.key, t.value) FROM tags t WHERE t.job_id = j.id) AS tags,\n"
            "  (SELECT json_group_object(l.key, l.value) FROM latest_results l\n"
            "     WHERE l.job_id = j.id) AS results,\n"
            "  '/-/xpm/job/' || j.id AS page\n"
            "FROM (SELECT * FROM jobs ORDER BY submit_time DESC LIMIT 100) j\n"
            "LEFT JOIN runs r ON r.id = j.last_run\n"
            "ORDER BY j.submit_time DESC"
        ),
    },
    "failed_jobs": {
        "title": "Failed jobs",
        "description": (
            "Failed jobs, latest first, with the last lines of their stderr "
            "(`xpm_log_tail(path, stream, lines)` reads them from the job directory)."
        ),
        "sql": (
            "SELECT j.id, j.task_id, j.reason, j.end_time AS ended,\n"
            "  j.exit_code, xpm_log_tail(j.path, 'stderr', 10) AS stderr_tail,\n"
            "  '/-/xpm/job/' || j.id AS page\n"
            "FROM jobs j WHERE j.state = 'FAILED'\n"
            "ORDER BY j.end_time DESC LIMIT 100"
        ),
    },
    "compare_jobs": {
        "title": "Compare two jobs' parameters",
        "description": "Parameters of jobs :a and :b (identifiers or prefixes) side by side, differences first.",
        "sql": (
            "WITH a AS (SELECT id FROM jobs WHERE id >= lower(:a) AND id < lower(:a) || 'g'\n"
            "           ORDER BY id LIMIT 1),\n"
            "     b AS (SELECT id FROM jobs WHERE id >= lower(:b) AND id < lower(:b) || 'g'\n"
            "           ORDER BY id LIMIT 1),\n"
            "     p AS (SELECT path,\n"
            "       MAX(CASE WHEN job_id = (SELECT id FROM a) THEN value END) AS a_value,\n"
            "       MAX(CASE WHEN job_id = (SELECT id FROM b) THEN value END) AS b_value,\n"
            "       SUM(job_id = (SELECT id FROM a)) AS in_a, SUM(job_id = (SELECT id FROM b)) AS in_b\n"
            "     FROM params WHERE job_id IN (SELECT id FROM a UNION SELECT id FROM b)\n"
            "     GROUP BY path)\n"
            "SELECT path, a_value, b_value,\n"
            "  CASE WHEN in_a = 0 OR in_b = 0 OR a_value IS NOT b_value THEN 'differs' ELSE '' END AS diff\n"
            "FROM p ORDER BY diff DESC, path"
        ),
    },
    "commit_jobs": {
        "title": "Jobs of a git commit",
        "description": "Jobs whose state and results come from code at :commit (a commit hash "
        "or prefix): the attempt that produced them was launched there.",
        "sql": (
            "SELECT DISTINCT j.id, j.task_id, j.state, r.experiment, g.commit_sha, g.branch,\n"
            "  g.dirty, j.submit_time AS submitted,\n"
            "  '/-/xpm/job/' || j.id AS page\n"
            "FROM git_states g JOIN job_git_states jg ON jg.git_state = g.id\n"
            "JOIN jobs j ON j.id = jg.job_id LEFT JOIN runs r ON r.id = j.run\n"
            "WHERE g.commit_sha >= lower(:commit) AND g.commit_sha < lower(:commit) || 'g'\n"
            "ORDER BY j.submit_time DESC"
        ),
    },
}
