"""8 experiment processes on one workdir, each submitting and running 200 trivial jobs with
overlapping configurations: no "database is locked", every job once, index == directories."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import assert_index_equals_rebuild, popen_python

from xpm._jobdir import iter_job_dirs
from xpm.index import check, open_index

PROCESSES = 8
JOBS = 200
SHIFT = 25  # process k submits n = 25k .. 25k+199: neighbours share 175 configurations

SCRIPT = """
import sys
from xpm import tag
from xpm._experiment import experiment
from xpm_test_tasks import Count
with experiment({workdir!r}, "stress{k}", progress=False, max_parallel=2) as xp:
    for n in range({start}, {start} + {jobs}):
        Count(n=tag(n)).submit()
print("ok", len(xp.jobs), sum(j.state == "DONE" for j in xp.jobs.values()))
"""


@pytest.mark.slow
def test_eight_processes_submitting_and_running(workdir: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    procs = [
        popen_python(SCRIPT.format(k=k, workdir=str(workdir), start=k * SHIFT, jobs=JOBS))
        for k in range(PROCESSES)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        outputs.append((proc.returncode, out, err))
    elapsed = time.monotonic() - start
    for code, out, err in outputs:
        assert code == 0, err[-3000:]
        assert out.split() == ["ok", str(JOBS), str(JOBS)], out + err[-2000:]
        assert "locked" not in (out + err).lower()
        assert "could not record" not in err and "rebuild" not in err
    distinct = JOBS + (PROCESSES - 1) * SHIFT
    dirs = list(iter_job_dirs(workdir))
    assert len(dirs) == distinct
    with open_index(workdir, readonly=True) as index:
        q = index.query
        assert tuple(q("SELECT COUNT(*), COUNT(DISTINCT id) FROM jobs")[0]) == (distinct, distinct)
        assert q("SELECT COUNT(*) FROM jobs WHERE state = 'DONE'")[0][0] == distinct
        assert q("SELECT COUNT(*) FROM runs WHERE end_time IS NOT NULL")[0][0] == PROCESSES
        per_run = q("SELECT run, COUNT(*) AS n FROM submissions GROUP BY run")
        assert sorted(r["n"] for r in per_run) == [JOBS] * PROCESSES
        assert q("SELECT COUNT(*) FROM tags")[0][0] == distinct
        assert tuple(q("SELECT MIN(value), MAX(value) FROM tags WHERE key = 'n'")[0]) == (
            0,
            distinct - 1,
        )
    assert check(workdir) == []
    # The index equals one rebuilt from the directories, row for row.
    assert_index_equals_rebuild(workdir, tmp_path)
    print(f"stress: {PROCESSES} processes, {distinct} distinct jobs run in {elapsed:.1f} s")
