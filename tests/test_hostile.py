"""Hostile input, full disks and read-only workdirs: every case ends in a clear error (#20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpm import Param, Task
from xpm._jobdir import JobDir
from xpm.errors import ConfigError, JobDirectoryError

# --- task ids (#20 point 1) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typeid", "problem"),
    [
        ("../escaped-task", "dot-separated names"),
        ("/tmp/absolute", "dot-separated names"),
        ("a/b", "dot-separated names"),
        ("..", "dot-separated names"),
        (".hidden", "dot-separated names"),
        ("trailing.", "dot-separated names"),
        ("with space", "dot-separated names"),
        ("nul\0byte", "dot-separated names"),
        ("new\nline", "dot-separated names"),
        ("-option", "dot-separated names"),
        ("x" * 300, "longer than 200 bytes"),
        ("é" * 101, "longer than 200 bytes"),
    ],
)
def test_bad_task_id_is_refused_at_class_definition(typeid: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:

        class Escaping(Task):
            __xpmid__ = typeid
            x: Param[int] = 1

    message = str(info.value)
    assert "Escaping: the __xpmid__ " in message
    assert problem in message and "\n" not in message


def test_a_too_long_derived_task_id_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"the derived type id .* longer than 200 bytes"):
        type("T" * 250, (Task,), {"__annotations__": {"x": Param[int]}, "x": 1})


def test_an_xpmid_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="__xpmid__ must be a string, got int"):

        class Numbered(Task):
            __xpmid__ = 12  # type: ignore[assignment]


@pytest.mark.parametrize("typeid", ["mylab.model", "a-b.c_d.E2", "été.modèle", "t.<locals>.m"])
def test_good_task_ids_are_kept(typeid: str) -> None:
    class Fine(Task):
        __xpmid__ = typeid

    assert Fine.__xpm__.typeid == typeid


@pytest.mark.parametrize(
    ("task_id", "identifier"), [("..", "abc"), ("a/../..", "abc"), ("t", ".."), ("t", "a/b")]
)
def test_a_job_directory_never_leaves_workdir_jobs(
    tmp_path: Path, task_id: str, identifier: str
) -> None:
    with pytest.raises(JobDirectoryError, match="cannot name a job directory"):
        JobDir(tmp_path, task_id, identifier)
