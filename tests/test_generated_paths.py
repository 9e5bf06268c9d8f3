"""Generated paths belong to one job and one position in it (issue 14, points 1-4).

Every test runs real job processes through the local launcher (or generate/dry-run modes)
and reads what landed on disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from xpm_test_tasks import Concat, Learn, Model, Say, Validates, Validation

from xpm import Config, Param, Task
from xpm._experiment import experiment
from xpm.errors import ConfigError


def run_xp(workdir: Path, run_mode: str = "normal"):  # type: ignore[no-untyped-def]
    return experiment(workdir, "xp", run_mode, progress=False)


def files_under(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize("run_mode", ["normal", "generate", "dry-run"])
@pytest.mark.parametrize("holder", ["direct", "list", "dict"])
def test_a_configuration_with_generated_paths_is_never_shared_by_two_jobs(
    workdir: Path, run_mode: str, holder: str
) -> None:
    def learner(x: int, v: Validation) -> Validates:
        if holder == "list":
            return Validates(x=x, validations=[v])
        if holder == "dict":
            return Validates(x=x, by_name={"val": v})
        return Validates(x=x, validation=v)

    v = Validation()
    with pytest.raises(ConfigError) as caught, run_xp(workdir, run_mode):
        first = learner(1, v)
        first.submit()
        learner(2, v).submit()
    message = str(caught.value)
    assert "\n" not in message
    assert "Validation" in message and "index" in message
    assert "one task" in message  # says how to fix it
    # The first job's directory holds only the first job's output; the second never got one.
    jobs = workdir / "jobs" / "xpm_test_tasks.validates"
    made = sorted(p.name for p in jobs.iterdir()) if jobs.exists() else []
    assert len(made) == (0 if run_mode == "dry-run" else 1)
    if run_mode == "normal":
        # The error cancels the first job (the body failed); whatever it wrote is its own.
        written = [p.read_text() for p in first.__xpm_jobdir__.path.rglob("index")]
        assert set(written) <= {"1\n"}


def test_a_path_resolved_for_one_task_cannot_be_given_to_another(workdir: Path) -> None:
    v = Validation()
    with pytest.raises(ConfigError, match="build a new Validation"), run_xp(workdir, "generate"):
        Validates(x=1, validation=v).submit()
        resolved = v.index
        assert resolved.is_absolute()
        # Built after the first submission, with the already resolved configuration.
        second = Validates(x=2, validation=v)
        second.submit()


@pytest.mark.parametrize("how", ["constructor", "assignment", "task-level"])
def test_a_generated_path_copied_by_hand_into_another_task_is_refused(
    workdir: Path, how: str
) -> None:
    """``Validation(index=v.index)``: the path, not the configuration, is shared; the
    second job would overwrite the first one's file (seen by a new user's trial)."""
    with pytest.raises(ConfigError) as caught, run_xp(workdir, "normal"):
        v = Validation()
        first = Validates(x=1, validation=v)
        first.submit()
        if how == "constructor":
            Validates(x=3, validation=Validation(index=v.index)).submit()
        elif how == "assignment":
            copy = Validation()
            copy.index = v.index
            Validates(x=3, validation=copy).submit()
        else:
            learned = Learn(model=Model(n_layers=1), epochs=1)
            learned.submit()
            Learn(model=Model(n_layers=2), epochs=1, model_path=learned.model_path).submit()
    message = str(caught.value)
    assert "\n" not in message and "inside the job directory of" in message
    assert "leave" in message  # says how to fix it
    written = [p.read_text() for p in (workdir / "jobs").rglob("index")]
    assert set(written) <= {"1\n"}  # the first job's file holds the first job's value


def test_a_given_output_path_of_its_own_or_outside_the_jobs_is_fine(
    workdir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "index"
    with run_xp(workdir, "generate") as xp:
        Validates(x=1, validation=Validation(index=outside)).submit()
        again = Validates(x=1, validation=Validation())
        again.submit()
        Validates(x=1, validation=Validation(index=again.validation.index)).submit()
    assert len(xp.jobs) == 1  # Meta paths are not in the identifier: one job, its own paths


def test_reusing_a_configuration_without_generated_paths_is_fine(workdir: Path) -> None:
    model = Model(n_layers=3)
    with run_xp(workdir, "generate") as xp:
        Learn(model=model, epochs=1).submit()
        Learn(model=model, epochs=2).submit()
    assert len(xp.jobs) == 2


def test_sibling_generated_paths_get_their_own_places(workdir: Path) -> None:
    task = Validates(
        x=7,
        validation=Validation(),
        validations=[Validation(), Validation()],
        by_name={"a": Validation(), "../b/": Validation(), "": Validation(), "\0": Validation()},
    )
    before = task.__identifier__().hex
    with run_xp(workdir) as xp:
        task.submit()
    job = next(iter(xp.jobs.values()))
    # Identifiers never depend on generated paths.
    assert job.identifier == before
    root = job.jobdir.path
    expected = {
        "validation/index",
        "validations/0/index",
        "validations/1/index",
        "by_name/a/index",
        "by_name/..%2Fb%2F/index",
        "by_name/%/index",  # the empty key
        "by_name/%00/index",  # a NUL: not the same place as the empty key
    }
    assert set(files_under(root)) >= expected
    for name in expected:
        assert (root / name).read_text() == "7\n"
    paths = [task.validation.index, *(v.index for v in task.validations)]
    paths += [v.index for v in task.by_name.values()]
    assert len(set(paths)) == 7
    assert all(p.is_relative_to(root) for p in paths)


def test_a_task_level_generated_path_stays_at_the_top_of_its_job(workdir: Path) -> None:
    with run_xp(workdir, "generate"):
        learned = Learn(model=Model(), epochs=1)
        learned.submit()
    assert learned.model_path == learned.__xpm_jobdir__.path / "model.pth"


def test_an_equal_task_object_submitted_twice_is_bound_to_the_same_job(workdir: Path) -> None:
    with run_xp(workdir) as xp:
        Say(word="hello").submit()
        h = Say(word="hello")
        out = h.submit()
        concat = Concat(strings=[h]).submit()
    assert out is h
    assert h.__xpm_jobdir__.path == xp.jobs[next(iter(xp.jobs))].jobdir.path
    assert h.out == h.__xpm_jobdir__.path / "word.txt"
    assert h.out.read_text() == "hello"
    assert concat.out.read_text() == "hello"
    assert [j.state for j in xp.jobs.values()] == ["DONE", "DONE"]


class Node(Config):
    """A configuration that can be made to hold itself."""

    child: Param[Config | None] = None


class Cyclic(Node):
    pass


class CycleTask(Task):
    """A task holding configurations (a cyclic one in the test below)."""

    nodes: Param[list[Config]]


def test_a_cyclic_configuration_is_a_clear_error(workdir: Path) -> None:
    a = Node()
    b = Cyclic(child=a)
    a.child = b
    with pytest.raises(ConfigError) as caught:
        a.__identifier__()
    message = str(caught.value)
    assert "\n" not in message
    assert "cycle" in message and "Node.child" in message and "Cyclic.child" in message
    # Shown and compared without RecursionError (a trial found both).
    assert repr(a) == "Node(child=Cyclic(child=...))"
    assert a == a and b != a
    c = Node()
    c.child = Cyclic(child=c)
    assert a == c  # two equal cycles
    with pytest.raises(ConfigError, match="cycle"), run_xp(workdir, "generate"):
        CycleTask(nodes=[a]).submit()
    assert not (workdir / "jobs").exists() or not any((workdir / "jobs").iterdir())
