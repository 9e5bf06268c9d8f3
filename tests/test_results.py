"""Results as tables: per-task tables in the index (kept live, rebuilt equal, checked),
on real SQLite files written by real experiments and job processes."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _oldschema import drop_digests
from conftest import ROOT, eventually, params_as_before_schema_5
from xpm_test_tasks import Count, Evaluate, Learn, Model, Train

from xpm import tag
from xpm._experiment import experiment
from xpm.errors import IndexDatabaseError
from xpm.index import check, open_index, rebuild
from xpm.index._migrations import migrate
from xpm.index._tasktables import column_names, table_names


def run_xp(workdir: Path, name: str = "xp", **kw: Any):  # type: ignore[no-untyped-def]
    return experiment(workdir, name, progress=False, **kw)


def task_snapshot(workdir: Path) -> dict[str, Any]:
    """Every task table as {name: {column set, rows as {column: (value, type)}}}."""
    out: dict[str, Any] = {}
    with open_index(workdir, readonly=True) as index:
        names = index.conn.execute("SELECT task_id, name FROM task_tables").fetchall()
        for task_id, name in names:
            cursor = index.conn.execute(f'SELECT * FROM "{name}" ORDER BY id')
            cols = [d[0] for d in cursor.description]
            rows = [
                {c: (v, type(v).__name__) for c, v in zip(cols, r, strict=True)} for r in cursor
            ]
            out[name] = (task_id, sorted(cols), rows)
        out["task_columns"] = index.conn.execute(
            "SELECT * FROM task_columns ORDER BY task_id, kind, key"
        ).fetchall()
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("results") / "workdir"
    with run_xp(workdir, "sweep"):
        for n in (1, 3):
            learned = Learn(model=Model(n_layers=tag(n)), epochs=2).submit()
            Evaluate(model=learned).submit()
        for lr in (0.1, 0.01):
            for seed in (0, 1):
                Train(lr=tag(lr), seed=tag(seed), optimizer=tag("adam")).submit()
    return workdir


def test_one_table_per_task_with_typed_columns(sweep: Path) -> None:
    with open_index(sweep, readonly=True) as index:
        rows = index.query(
            'SELECT "model.model.n_layers" AS n, n_layers, accuracy, state, experiment, '
            "duration, typeof(accuracy) AS t FROM evaluate ORDER BY accuracy DESC"
        )
        assert [(r["n"], r["n_layers"], round(r["accuracy"], 6)) for r in rows] == [
            (3, 3, 0.8),
            (1, 1, 0.6),
        ]
        assert {r["state"] for r in rows} == {"DONE"} and {r["t"] for r in rows} == {"real"}
        assert {r["experiment"] for r in rows} == {"sweep"}
        assert all(r["duration"] >= 0 for r in rows)
        # Clash rule: result `lr` keeps the name; the tag and parameter get their kind.
        train = index.query(
            'SELECT lr, "tag:lr" AS tag_lr, "param:lr" AS param_lr, seed, "param:seed" AS ps, '
            "accuracy, loss, optimizer FROM train ORDER BY tag_lr, seed"
        )
        assert [tuple(r) for r in train] == [
            (0.02, 0.01, 0.01, 0, 0, 0.51, 1 / 3.01, "adam"),
            (0.02, 0.01, 0.01, 1, 1, 0.52, 1 / 3.01, "adam"),
            (0.2, 0.1, 0.1, 0, 0, 0.6, 1 / 3.1, "adam"),
            (0.2, 0.1, 0.1, 1, 1, 0.61, 1 / 3.1, "adam"),
        ]
        cols = dict(
            (tuple(r[:2]), r[2])
            for r in index.query(
                "SELECT kind, key, name FROM task_columns WHERE task_id LIKE '%.train'"
            )
        )
        assert cols[("result", "lr")] == "lr" and cols[("tag", "lr")] == "tag:lr"
        assert cols[("param", "optimizer")] == "param:optimizer"
        # Commit of the run: NULL here (the workdir is no git repository), a column anyway.
        assert "commit_sha" in [r[1] for r in index.query('PRAGMA table_info("train")')]


def test_naming_rules_are_order_free_and_documented() -> None:
    names = table_names(["a.evaluate", "b.evaluate", "m.learn", "x.jobs", "jobs"])
    assert names == {
        "a.evaluate": "a.evaluate",
        "b.evaluate": "b.evaluate",
        "m.learn": "learn",
        "x.jobs": "x.jobs",
        "jobs": "task:jobs",
    }
    keys = [("param", "loss"), ("result", "loss"), ("tag", "loss"), ("param", "state")]
    assert (
        column_names(keys)
        == column_names(reversed(keys))
        == {
            ("result", "loss"): "loss",
            ("tag", "loss"): "tag:loss",
            ("param", "loss"): "param:loss",
            ("param", "state"): "param:state",  # fixed columns come first
        }
    )
    # SQLite compares names without case: `LR` and `lr` cannot both be bare.
    assert column_names([("param", "LR"), ("param", "lr")]) == {
        ("param", "LR"): "LR",
        ("param", "lr"): "param:lr",
    }


def test_rebuild_reproduces_task_tables_and_check_covers_them(sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    before = task_snapshot(copy)
    assert {"learn", "evaluate", "train"} <= before.keys()
    (copy / "xpm.db").unlink()
    rebuild(copy)
    assert task_snapshot(copy) == before
    assert check(copy) == []
    # A task table that drifted from the index's tables is reported, and rebuild fixes it.
    with open_index(copy) as index:
        index.write(lambda c: c.execute("UPDATE train SET accuracy = 0 WHERE seed = 1"))
        index.write(lambda c: c.execute("DELETE FROM evaluate"))
    found = sorted(m.kind for m in check(copy))
    assert found == ["task-table"] * 4, check(copy)
    rebuild(copy)
    assert check(copy) == [] and task_snapshot(copy) == before


def test_columns_appear_and_are_renamed_as_keys_appear(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    with run_xp(workdir):
        Count(n=1).submit()
    with open_index(workdir, readonly=True) as index:
        assert [tuple(r) for r in index.query("SELECT n FROM count")] == [(1,)]
    with run_xp(workdir):
        Count(n=tag(2)).submit()  # a tag `n` now takes the bare name from the parameter
    with open_index(workdir, readonly=True) as index:
        rows = index.query('SELECT n, "param:n" AS p FROM count ORDER BY p')
        assert [tuple(r) for r in rows] == [(None, 1), (2, 2)]
    live = task_snapshot(workdir)
    rebuild(workdir)
    assert task_snapshot(workdir) == live


def test_migration_from_version_2_builds_task_tables(sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    params_as_before_schema_5(copy)
    rebuild(copy)
    expected = task_snapshot(copy)
    conn = sqlite3.connect(copy / "xpm.db", isolation_level=None)
    try:  # back to what xpm wrote at schema version 2 (before the task tables)
        for (name,) in conn.execute("SELECT name FROM task_tables").fetchall():
            conn.execute(f'DROP TABLE "{name}"')
        for name in ("task_tables", "task_columns", "results_read"):
            conn.execute(f"DROP TABLE {name}")
        conn.execute("ALTER TABLE params DROP COLUMN meta")
        drop_digests(conn)
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    finally:
        conn.close()
    with open_index(copy):
        pass  # opening for writing upgrades it
    assert task_snapshot(copy) == expected
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(fresh)[1] >= 3


def test_migration_from_version_3_names_the_file_each_cursor_read(
    sweep: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    params_as_before_schema_5(copy)
    rebuild(copy)
    conn = sqlite3.connect(copy / "xpm.db", isolation_level=None)
    try:  # back to schema version 3: offsets without the file they belong to
        conn.execute("ALTER TABLE results_read DROP COLUMN file")
        conn.execute("ALTER TABLE params DROP COLUMN meta")
        drop_digests(conn)
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        before = conn.execute("SELECT job_id, bytes FROM results_read ORDER BY job_id").fetchall()
    finally:
        conn.close()
    assert before
    with open_index(copy) as index:  # opening for writing upgrades it
        after = index.query("SELECT job_id, bytes, file FROM results_read ORDER BY job_id")
    assert [(r[0], r[1]) for r in after] == before and all(r[2] is None for r in after)
    assert check(copy) == []  # an offset of unknown file still reads on as before


def test_query_schema_lists_the_task_tables(sweep: Path) -> None:
    from click.testing import CliRunner

    from xpm.cli import cli

    out = CliRunner().invoke(cli, ["query", "--schema", "--workdir", str(sweep)])
    assert out.exit_code == 0, out.output
    assert "### Table `jobs`" in out.output  # the documented schema first
    assert "### Table `train`" in out.output and "| `tag:lr` | tag `lr` |" in out.output


# --- xpm results -------------------------------------------------------------------------------
def cli_run(*args: str) -> Any:
    from click.testing import CliRunner

    from xpm.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_xpm_results_filters_sorts_and_formats(sweep: Path) -> None:
    w = ["--workdir", str(sweep)]
    out = cli_run("results", "train", *w, "--where", "lr>0.05", "--sort", "-accuracy")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "state",
        "tag:lr",
        "optimizer",
        "seed",
        "accuracy",
        "loss",
        "lr",
        "duration",
    ]
    assert [line.split()[5] for line in lines[2:]] == ["0.61", "0.6"]
    assert lines[2].split()[7] == "0.2" and lines[2].split()[6] == "0.3226"  # 4 digits
    data = json.loads(cli_run("results", "train", *w, "--tag", "seed=1", "--format", "json").stdout)
    assert sorted(r["accuracy"] for r in data) == [0.52, 0.61]
    assert {r["loss"] for r in data} == {1 / 3.01, 1 / 3.1}  # every digit in json
    assert all(len(r["id"]) == 64 for r in data)
    csv = cli_run(
        "results",
        "train",
        *w,
        "--where",
        "optimizer=adam and seed=0",
        "--columns",
        "id,accuracy",
        "--format",
        "csv",
    ).stdout.splitlines()
    assert csv[0] == "id,accuracy" and len(csv) == 3
    # Typed text: "0.1" matches the float, quoted text stays text, null matches missing.
    assert (
        len(
            json.loads(
                cli_run(
                    "results", "train", *w, "--where", '"tag:lr"=0.1', "--format", "json"
                ).stdout
            )
        )
        == 2
    )
    none = cli_run("results", "train", *w, "--where", "optimizer='sgd'", "--format", "json")
    assert json.loads(none.stdout) == []
    # No task given: the only task with... several have results here, so it asks.
    several = cli_run("results", *w)
    assert several.exit_code == 2 and "several tasks have results" in several.stderr


def test_xpm_results_groups_over_seeds(sweep: Path) -> None:
    out = cli_run(
        "results",
        "train",
        "--workdir",
        str(sweep),
        "--group-by",
        "tag:lr",
        "--agg",
        "mean,std,count",
        "--format",
        "json",
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["tag:lr"] for r in rows] == [0.01, 0.1]
    assert [round(r["accuracy_mean"], 6) for r in rows] == [0.515, 0.605]
    assert [round(r["accuracy_std"], 6) for r in rows] == [0.007071, 0.007071]
    assert [r["accuracy_count"] for r in rows] == [2, 2]
    table = cli_run("results", "train", "--workdir", str(sweep), "--group-by", "seed")
    assert "accuracy_mean" in table.stdout and table.stdout.count("\n") == 4


def test_agg_count_counts_values_not_jobs(sweep: Path, tmp_path: Path) -> None:
    """A job without the result (failed before reporting it) is not counted, as SQL's
    COUNT(column): "count 2" beside a mean over 1 value read as two seeds (a user's 20 for
    19 accuracies)."""
    copy = tmp_path / "wd"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("jobs"))
    conn = sqlite3.connect(copy / "xpm.db")
    with conn:
        [job] = conn.execute(
            'SELECT id FROM train WHERE "tag:lr" = 0.1 ORDER BY seed LIMIT 1'
        ).fetchone()
        # What the index holds for a job that failed after its losses, before its accuracy.
        conn.execute("DELETE FROM results WHERE job_id = ? AND key = 'accuracy'", (job,))
        conn.execute("UPDATE train SET accuracy = NULL, state = 'FAILED' WHERE id = ?", (job,))
    conn.close()
    out = cli_run(
        "results",
        "train",
        "--workdir",
        str(copy),
        "--group-by",
        "tag:lr",
        "--agg",
        "mean,count",
        "--format",
        "json",
    )
    assert out.exit_code == 0, out.output
    rows = {r["tag:lr"]: r for r in json.loads(out.stdout)}
    assert (rows[0.1]["accuracy_count"], rows[0.1]["loss_count"]) == (1, 2)
    assert (rows[0.01]["accuracy_count"], rows[0.01]["loss_count"]) == (2, 2)
    assert round(rows[0.1]["accuracy_mean"], 6) == 0.61  # the seed left, not halved
    assert "count" not in rows[0.1]  # no count of rows that reads as one of values
    table = cli_run("results", "train", "--workdir", str(copy), "--group-by", "tag:lr")
    assert "accuracy_count" in table.stdout and "loss_count" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--sort", "-acuracy"], "unknown sort column 'acuracy' in the table 'train'"),
        (["train", "--where", "acuracy>0.5"], "did you mean 'accuracy'?"),
        (["train", "--columns", "id,los"], "did you mean 'loss'?"),
        (["train", "--group-by", "sed"], "did you mean 'seed'?"),
        (["train", "--tag", "sed=1"], "has no tag 'sed': did you mean 'seed'?"),
        (["trian"], "no task 'trian' in the index: did you mean 'train'?"),
        (["train", "--agg", "mean"], "--agg needs --group-by"),
        (["train", "--group-by", "seed", "--agg", "avg"], "--agg 'avg': use some of"),
        # Hostile input: never SQL.
        (["train", "--where", "accuracy>0 OR 1=1"], "has spaces: separate conditions"),
        # Natural mistakes matched nothing without a word (a trial): now said.
        (["train", "--where", "lr=0.1 or lr=0.01"], "there is no 'or'"),
        (["train", "--where", "lr=0.1 seed=0"], "separate conditions with commas"),
        (["train", "--where", "1=1; DROP TABLE jobs; --"], "--where '1=1; DROP TABLE jobs; --'"),
        (["train", "--where", "id=x) OR (1=1"], "has spaces"),
        (["train", "--where", "id='x) OR (1=1'"], None),  # quoted: text, compared, no rows
        (["train", "--where", '"x"" OR 1=1 --"=1'], "unknown column"),
        (["train", "--where", "lr>'0.1"], "a quote ' is not closed"),
        (["train", "--sort", "accuracy; DROP TABLE jobs"], "unknown sort column"),
        (["train", "--where", "seed"], "write COLUMN OP VALUE"),
    ],
)
def test_xpm_results_bad_and_hostile_input(
    sweep: Path, args: list[str], message: str | None
) -> None:
    before = (sweep / "xpm.db").read_bytes()
    out = cli_run("results", *args, "--workdir", str(sweep), "--format", "json")
    if message is None:  # parsed as a value compared with a bound parameter: no rows, no harm
        assert out.exit_code == 0 and json.loads(out.stdout) == [], out.output
    else:
        assert out.exit_code == 2, out.output
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    with open_index(sweep, readonly=True) as index:
        assert index.query("SELECT COUNT(*) FROM jobs")[0][0] == 8
    assert (sweep / "xpm.db").read_bytes() == before


# --- Python --------------------------------------------------------------------------------------
def test_python_api_returns_the_same_rows(sweep: Path) -> None:
    import xpm

    rows = xpm.results(sweep, "train", where="seed=1", sort="-accuracy")
    assert [r["accuracy"] for r in rows] == [0.61, 0.52]
    assert rows.columns[:2] == ["id", "state"] and rows.task.endswith(".train")
    cli = json.loads(
        cli_run(
            "results",
            "train",
            "--workdir",
            str(sweep),
            "--where",
            "seed=1",
            "--sort",
            "-accuracy",
            "--format",
            "json",
        ).stdout
    )
    assert cli == list(rows)
    tagged = xpm.results(sweep, task="train", tags={"lr": 0.1}, experiment="sweep")
    assert len(tagged) == 2 and {r["tag:lr"] for r in tagged} == {0.1}
    grouped = xpm.results(sweep, "train", group_by="tag:lr", agg="mean,count")
    assert [(g["tag:lr"], g["accuracy_count"]) for g in grouped] == [(0.01, 2), (0.1, 2)]
    from xpm.errors import UsageError

    with pytest.raises(UsageError, match="did you mean 'accuracy'"):
        xpm.results(sweep, "train", where="acuracy > 1")


def test_to_pandas_round_trip(sweep: Path) -> None:
    pandas = pytest.importorskip("pandas", reason="pandas is optional: pip install pandas")
    import xpm

    rows = xpm.results(sweep, "train", columns="*")
    frame = rows.to_pandas()
    assert list(frame.columns) == rows.columns and len(frame) == 4
    assert str(frame["accuracy"].dtype) == "float64" and str(frame["seed"].dtype) == "int64"
    assert frame.to_dict("records") == list(rows)
    assert isinstance(frame, pandas.DataFrame)


def test_to_pandas_without_pandas_names_the_extra(sweep: Path, tmp_path: Path) -> None:
    """pandas hidden from a real interpreter: the error says how to get it."""
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import xpm\n"
        f"rows = xpm.results({str(sweep)!r}, 'train')\n"
        "try:\n    rows.to_pandas()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "pip install pandas" in out.stdout, out.stderr


# --- live results --------------------------------------------------------------------------------
_wait = eventually


def _train_rows(workdir: Path) -> list[dict[str, Any]]:
    with open_index(workdir, readonly=True) as index:
        try:
            return [dict(r) for r in index.query("SELECT * FROM train")]
        except IndexDatabaseError:
            return []  # no table yet


def test_experiment_ingests_results_while_the_job_runs(tmp_path: Path) -> None:
    workdir, gate, hold = tmp_path / "wd", tmp_path / "gate", tmp_path / "hold"
    with run_xp(workdir):
        Train(lr=tag(0.5), steps=4, gate=str(gate), hold=str(hold)).submit()
        # Running, nothing reported yet (the state change is recorded)...
        _wait(lambda: [r for r in _train_rows(workdir) if r["state"] == "RUNNING"], "RUNNING")
        assert "loss" not in _train_rows(workdir)[0]
        gate.write_text("go")
        # ... then 4 losses and a wait: no state change, yet the index has them.
        rows = _wait(
            lambda: [r for r in _train_rows(workdir) if r.get("loss") == 1 / 4.5],
            "the running job's latest loss in the task table",
        )
        assert rows[0]["state"] == "RUNNING" and rows[0].get("accuracy") is None
        with open_index(workdir, readonly=True) as index:
            steps = index.query("SELECT step FROM results WHERE key = 'loss' ORDER BY seq")
            assert [r[0] for r in steps] == [0, 1, 2, 3]
        hold.write_text("go")
    final = _train_rows(workdir)
    assert final[0]["state"] == "DONE" and final[0]["accuracy"] == 1.0
    assert check(workdir) == []
    live = task_snapshot(workdir)
    with open_index(workdir, readonly=True) as index:
        read = index.query("SELECT job_id, bytes, lines, counts FROM results_read")
        before = [tuple(r) for r in read]
    assert before and before[0][2] == 5  # 4 losses, then accuracy and lr on one line
    rebuild(workdir)
    assert task_snapshot(workdir) == live
    with open_index(workdir, readonly=True) as index:
        after = [
            tuple(r) for r in index.query("SELECT job_id, bytes, lines, counts FROM results_read")
        ]
    assert after == before


def test_readers_pick_up_results_of_a_detached_run(tmp_path: Path) -> None:
    workdir, gate, hold = tmp_path / "wd", tmp_path / "gate", tmp_path / "hold"
    with run_xp(workdir, "detached", detach=True):
        Train(lr=tag(0.25), steps=3, gate=str(gate), hold=str(hold)).submit()

    def listed_state() -> str:
        out = cli_run("jobs", "list", "--workdir", str(workdir), "--format", "json")
        return str(json.loads(out.stdout)[0]["state"])

    _wait(lambda: listed_state() == "RUNNING", "the index to say RUNNING")
    gate.write_text("go")  # reports from now on come with no state change
    results_file = _wait(lambda: list(workdir.glob("jobs/*.train/*/results.jsonl")), "results")[0]
    _wait(lambda: results_file.read_text().count("\n") == 3, "3 reports")
    # No experiment process any more: the reader itself records the new lines; `xpm query`
    # too (through xpm's writer first: the user's SQL still runs read-only).
    sql = "SELECT COUNT(*) AS n, MIN(value) AS last FROM results WHERE key = 'loss'"
    queried = cli_run("query", sql, "--workdir", str(workdir), "--format", "json")
    assert queried.exit_code == 0, queried.output
    assert json.loads(queried.stdout) == [{"n": 3, "last": 1 / 3.25}]
    out = cli_run("results", "train", "--workdir", str(workdir), "--format", "json")
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    assert row["state"] == "RUNNING" and row["loss"] == 1 / 3.25
    listed = cli_run("jobs", "list", "--workdir", str(workdir), "--format", "json")
    assert json.loads(listed.stdout)[0]["results"] == {"loss": 1 / 3.25}
    hold.write_text("go")

    def done() -> list[dict[str, Any]]:
        rows = json.loads(
            cli_run("results", "train", "--workdir", str(workdir), "--format", "json").stdout
        )
        return rows if rows[0]["state"] == "DONE" else []

    (row,) = _wait(done, "the job to end")
    assert row["accuracy"] == 0.75 and row["lr"] == 0.5
    assert check(workdir) == []
    live = task_snapshot(workdir)
    rebuild(workdir)
    assert task_snapshot(workdir) == live


def test_incremental_reads_equal_one_read_and_thin_long_histories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job reporting many values: the index keeps the first RESULTS_CAP reports of a key,
    then fewer and fewer, and always the latest; read in pieces or at once, the same rows."""
    import random

    from xpm._jobdir import JobDir
    from xpm.index._ingest import write_results
    from xpm.index._rows import JobRows, keep_report, read_results_from

    monkeypatch.setattr("xpm.index._rows.RESULTS_CAP", 10)
    assert [n for n in range(10, 50) if keep_report(n)] == [
        10,
        12,
        14,
        16,
        18,
        20,
        24,
        28,
        32,
        36,
        40,
        48,
    ]
    workdir = tmp_path / "wd"
    jobdir = JobDir(workdir, "m.t", "ab" * 32)
    jobdir.path.mkdir(parents=True)
    lines = []
    for i in range(1000):
        values = {"loss": i / 7} if i % 10 else {"loss": i / 7, "acc": i}
        lines.append(json.dumps({"time": 1.0, "step": i, "values": values}) + "\n")
    data = "".join(lines).encode()
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(1, len(data)), 40)) + [len(data)]

    def table(wd: Path) -> list[tuple[Any, ...]]:
        with open_index(wd, readonly=True) as index:
            return [tuple(r) for r in index.query("SELECT * FROM results ORDER BY seq, key")]

    with open_index(workdir) as index:
        cursor = None
        written = 0
        for cut in cuts:  # a writer appending, sometimes half a line
            with open(jobdir.results, "ab") as fh:
                fh.write(data[written:cut])
            written = cut
            rows = JobRows({"id": jobdir.identifier})
            rows.results, rows.results_drop, rows.cursor, rows.results_replace = read_results_from(
                jobdir, cursor
            )
            assert rows.results_replace == (cursor is None)
            index.write(lambda c, r=rows: write_results(c, [r]))
            cursor = rows.cursor
    pieces = table(workdir)
    once_wd = tmp_path / "once"
    once = JobDir(once_wd, "m.t", "ab" * 32)
    once.path.mkdir(parents=True)
    once.results.write_bytes(data)
    with open_index(once_wd) as index:
        rows = JobRows({"id": once.identifier})
        rows.results, rows.results_drop, rows.cursor, _ = read_results_from(once)
        index.write(lambda c: write_results(c, [rows]))
    assert table(once_wd) == pieces
    losses = [r for r in pieces if r[2] == "loss"]
    assert len(losses) == sum(keep_report(n) for n in range(1000)) + 1  # + the latest
    assert (
        losses[-1][1] == 999
        and len([r for r in pieces if r[2] == "acc"]) == sum(keep_report(n) for n in range(100)) + 1
    )
    assert cursor is not None and cursor.lines == 1000 and cursor.bytes == len(data)


def test_a_new_attempt_is_read_from_its_start_even_past_the_old_offset(tmp_path: Path) -> None:
    """The index's read offset belongs to one file: once a job runs again, its new
    results.jsonl is read from the start, however far it has grown by the next read."""
    from xpm._jobdir import JobDir
    from xpm.index._ingest import read_cursors, write_results
    from xpm.index._rows import JobRows, read_results_from

    workdir = tmp_path / "wd"
    jobdir = JobDir(workdir, "m.t", "cd" * 32)
    jobdir.path.mkdir(parents=True)

    def line(value: int) -> str:
        return json.dumps({"time": 1.0, "step": None, "values": {"loss": value}}) + "\n"

    def ingest(cursor: Any) -> Any:
        rows = JobRows({"id": jobdir.identifier})
        rows.results, rows.results_drop, rows.cursor, rows.results_replace = read_results_from(
            jobdir, cursor
        )
        with open_index(workdir) as index:
            index.write(lambda c: write_results(c, [rows]))
            return read_cursors(index.conn, [jobdir.identifier])[jobdir.identifier]

    jobdir.results.write_text(line(1))
    cursor = ingest(None)
    assert cursor.file == jobdir.results.stat().st_ino  # kept in the index, read back
    assert jobdir.rotate_for_new_attempt() == 1
    assert not jobdir.results.exists() and jobdir.results_of(1).read_text() == line(1)
    jobdir.results.write_text(line(200) + line(300) + line(400))  # past the old offset
    ingest(cursor)
    with open_index(workdir, readonly=True) as index:
        rows = index.query("SELECT seq, value FROM results ORDER BY seq")
    assert [tuple(r) for r in rows] == [(0, 200), (1, 300), (2, 400)]


def test_the_table_shows_enough_digits_to_tell_values_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: 1.002, 1.0015, 1.001, 1.0005 printed as 1.002, 1.002, 1.001, 1.0 at four
    significant digits: sorted by accuracy, two runs looked equal."""
    from xpm.cli._render import echo_results

    rows = [
        {"id": f"{i:064x}", "accuracy": v, "lr": 0.1}
        for i, v in enumerate([1.002, 1.0015, 1.001, 1.0005, 0.123456789])
    ]
    echo_results(rows, ["id", "accuracy", "lr"], "table")
    shown = [line.split()[1] for line in capsys.readouterr().out.splitlines()[2:]]
    assert shown == ["1.002", "1.0015", "1.001", "1.0005", "0.12346"]  # one precision a column
    assert len(set(shown)) == len(shown)


def test_where_on_state_takes_any_case_and_waiting(sweep: Path) -> None:
    """A trial: `--where state=done` matched nothing while `--state done` works."""
    upper = cli_run("results", "train", "--workdir", str(sweep), "--where", "state=DONE")
    lower = cli_run("results", "train", "--workdir", str(sweep), "--where", "state=done")
    assert upper.exit_code == lower.exit_code == 0 and lower.stdout == upper.stdout
    assert "(none)" not in lower.stdout
    waiting = cli_run("results", "train", "--workdir", str(sweep), "--where", "state=waiting")
    assert waiting.exit_code == 0 and waiting.stdout.strip() == "(none)"


def test_where_on_duration_reads_units_as_the_tables_show_them(sweep: Path) -> None:
    """`--where duration>0.1s` printed "(none)" (0.1s read as text); the web's runs table
    took it.  Both read s, m, h, d; a duration that cannot be read is an error."""
    base = ("results", "train", "--workdir", str(sweep), "--format", "json", "--where")
    every = json.loads(cli_run(*base, "duration>=0").stdout)
    assert every and json.loads(cli_run(*base, "duration>=0s").stdout) == every
    assert json.loads(cli_run(*base, "duration<1d").stdout) == every
    assert cli_run(*base, "duration>2h").stdout.strip() in ("[]", "(none)")
    bad = cli_run(*base, "duration>fast")
    assert bad.exit_code == 2 and "write a duration in seconds or with s, m, h or d" in bad.stderr


def test_results_of_a_mistyped_experiment_suggest_the_name(sweep: Path) -> None:
    with open_index(sweep, readonly=True) as index:
        (name,) = index.query("SELECT name FROM experiments LIMIT 1")[0]
    out = cli_run("results", "train", "--workdir", str(sweep), "--experiment", name[:-1] + "x")
    assert out.exit_code == 0 and out.stdout.strip() == "(none)"
    assert f"did you mean '{name}'?" in out.stderr


def test_meta_parameters_are_recorded_as_such_and_not_shown_by_default(workdir: Path) -> None:
    """A Meta parameter (gpus, a generated path) is not a setting: the index marks it, the
    task table types its column ``meta``, and `xpm results` leaves it out unless asked (#16:
    the model path of every Learn job was a default column, 100 characters wide)."""
    with experiment(workdir, "meta", progress=False):
        for epochs, gpus in ((1, 1), (2, 4)):
            Learn(model=Model(n_layers=2), epochs=epochs, gpus=gpus).submit()
    with open_index(workdir, readonly=True) as index:
        flags = dict(index.query("SELECT DISTINCT path, meta FROM params"))
        kinds = dict(index.query("SELECT key, kind FROM task_columns"))
    metas = {p for p, m in flags.items() if m == 1}
    assert metas == {"gpus", "counter", "hold", "model_path", "model.device"}  # nested too
    assert flags["epochs"] is None and flags["model.n_layers"] is None
    assert kinds["gpus"] == "meta" and kinds["model_path"] == "meta" and kinds["epochs"] == "param"
    shown = cli_run("results", "learn", "--workdir", str(workdir), "--format", "json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    assert set(rows[0]) == {"id", "state", "epochs", "duration"}
    every = cli_run(
        "results", "learn", "--workdir", str(workdir), "--columns", "*", "--format", "json"
    )
    assert {"gpus", "model_path"} <= set(json.loads(every.output)[0])
    asked = cli_run("results", "learn", "--workdir", str(workdir), "--columns", "epochs,gpus")
    assert asked.exit_code == 0 and "gpus" in asked.output
    assert check(workdir) == []  # the live index and a rebuild agree on it


def test_no_match_says_which_filter_left_nothing(sweep: Path) -> None:
    """`xpm results` printed "(none)" and nothing else: each filter now says what it keeps
    alone and, when nothing, what its column holds (on stderr: json stays a json list)."""
    base = ("results", "train", "--workdir", str(sweep))
    out = cli_run(*base, "--where", "seed>5, accuracy>0.5")
    assert out.exit_code == 0 and out.stdout.strip() == "(none)"
    (note,) = [line for line in out.stderr.splitlines() if "no job matches" in line]
    assert "seed>5 keeps none: seed holds 0, 1" in note, note
    assert "accuracy>0.5 alone keeps 4 jobs" in note, note
    assert "each keeps" not in note
    # Each keeps jobs, never the same ones (accuracy 0.5 + lr + seed/100).
    out = cli_run(*base, "--where", "seed=0", "--where", "accuracy>0.605", "--format", "json")
    assert json.loads(out.stdout) == []
    assert "each keeps jobs alone, but no job meets them all" in out.stderr, out.stderr
    # Text values are listed, a tag given with --tag is named as typed.
    out = cli_run(*base, "--tag", "optimizer=sgd", "--where", "state=failed")
    assert "--tag optimizer=sgd keeps none: optimizer holds adam" in out.stderr, out.stderr
    assert "state=failed keeps none: state holds DONE" in out.stderr, out.stderr
    # Times read as dates.
    out = cli_run(*base, "--where", "start_time<0")
    assert re.search(r"start_time<0 keeps none: start_time runs from \d{4}-\d\d-\d\d ", out.stderr)
    # Rows found: no note.
    assert "no job matches" not in cli_run(*base, "--where", "seed=0").stderr
