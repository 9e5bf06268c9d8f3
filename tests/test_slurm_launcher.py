"""The Slurm launcher: generated scripts, hostile paths, options, and a real cluster.

The fixtures ``slurm_cluster`` and ``slurm_launcher`` come from ``_slurm_fixtures``
(registered in conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _slurm_fixtures import SlurmCluster, submit_array_commands, submit_command, wait_for_states

from xpm._jobdir import JobDir
from xpm.errors import LauncherError
from xpm.launchers._base import LaunchedJob
from xpm.launchers.slurm import SlurmLauncher

GOLDEN = Path(__file__).parent / "golden" / "slurm_job.sh"
IDENT = "0123456789abcdef" * 4

HOSTILE_NAMES = [
    "with space",
    "quote ' and \" double",
    "$(touch pwned)",
    "; echo injected",
    "`touch pwned2` & > redirect",
    "new\nline",
    "percent %j %% and \\ backslash",
]


def make_jobdir(workdir: Path, task: str = "tests.Task", ident: str = IDENT) -> JobDir:
    jobdir = JobDir(workdir, task, ident)
    jobdir.path.mkdir(parents=True, exist_ok=True)
    return jobdir


def fake_bin(directory: Path, name: str, body: str) -> Path:
    """An executable bash script ``directory/name``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# --- the generated script ------------------------------------------------------------------
def golden_launcher() -> SlurmLauncher:
    return SlurmLauncher(
        partition="gpu",
        time="2:00:00",
        cpus_per_task=4,
        mem="16G",
        gpus=2,
        account="lab",
        qos="normal",
        constraint="a100|v100",
        nodes=1,
        options={"mail_type": "END", "exclusive": True, "requeue": False},
    )


def test_job_script_matches_golden_file() -> None:
    jobdir = JobDir(Path("/scratch/xpm-workdir"), "mypkg.train.Train", IDENT)
    command = ["python", "-m", "xpm.run", str(jobdir.path)]
    env = {"PYTHONPATH": "/src/project", "XPM_NOTE": "a b $HOME 'q'"}
    text, argv = golden_launcher().job_script(jobdir, command, env)
    if os.environ.get("XPM_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
    # '|' cannot be written in an #SBATCH line: it goes on the command line.
    assert argv == ["--constraint=a100|v100"]
    # Deterministic: the same inputs give the same script.
    assert golden_launcher().job_script(jobdir, command, env) == (text, argv)


def test_script_puts_unsafe_paths_on_the_command_line(tmp_path: Path) -> None:
    jobdir = make_jobdir(tmp_path / "a b")
    text, argv = SlurmLauncher().job_script(jobdir, ["true"], {})
    assert f"--chdir={jobdir.path}" in argv
    assert f"--output={jobdir.stdout}" in argv
    assert f"--error={jobdir.stderr}" in argv
    assert "#SBATCH --chdir" not in text
    assert (
        "# given on the sbatch command line (not writable here): --chdir, --output, --error" in text
    )


def test_invalid_environment_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LauncherError, match="environment variable name"):
        SlurmLauncher().job_script(make_jobdir(tmp_path), ["true"], {"A;B": "x"})


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_path_runs_exact_argv_without_injection(tmp_path: Path, name: str) -> None:
    base = tmp_path / name
    jobdir = make_jobdir(base / "work", task="tests.Hostile")
    out = base / "argv.json"
    probe = (
        "import json, os, sys; json.dump({'argv': sys.argv[2:], 'cwd': os.getcwd(), "
        "'env': os.environ['XPM_VALUE']}, open(sys.argv[1], 'w'))"
    )
    args = [name, "$(touch pwned3)", "; echo injected", "'", '"', "*"]
    command = [sys.executable, "-c", probe, str(out), *args]
    text, argv = SlurmLauncher(partition="debug").job_script(
        jobdir, command, {"XPM_VALUE": name + " $(touch pwned4)"}
    )
    for line in text.splitlines():
        if line.startswith("#SBATCH"):
            assert "\n" not in line and " " not in line[len("#SBATCH ") :], line
    jobdir.script.write_text(text)
    run = subprocess.run(
        ["bash", str(jobdir.script)], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    recorded = json.loads(out.read_text())
    assert recorded == {"argv": args, "cwd": str(jobdir.path), "env": name + " $(touch pwned4)"}
    leftovers = [p for p in tmp_path.rglob("pwned*")] + list(Path.cwd().glob("pwned*"))
    assert leftovers == []
    if any(c in name for c in " '\"$;`&>\n\\"):
        assert any(a.startswith("--chdir=") for a in argv)


def test_hostile_array_scripts_run_the_right_task(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_bin(bindir, "sbatch", f'printf "%s\\n" "$@" > {tmp_path}/sbatch.args\necho "42;cluster"\n')
    base = tmp_path / "$(touch pwned) ; echo x 'q'\nnl"
    jobdirs = [make_jobdir(base, ident=f"{i:064x}") for i in range(3)]
    commands = [["bash", "-c", f'echo "task {i} in $PWD"; echo err{i} >&2'] for i in range(3)]
    launcher = SlurmLauncher(binpath=bindir, array_throttle=2)
    launched = submit_array_commands(
        launcher, jobdirs, commands, {"XPM_A": "1"}, array_dir=base / "arrays"
    )
    assert [j.launcher_job_id for j in launched] == ["42_0", "42_1", "42_2"]
    assert [j.jobdir for j in launched] == jobdirs
    sbatch_args = (tmp_path / "sbatch.args").read_text()
    assert "--array=0-2%2" in (base / "arrays" / "array.sh").read_text()
    assert sbatch_args.endswith(str(base / "arrays" / "array.sh") + "\n")
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1"}
    run = subprocess.run(
        ["bash", str(base / "arrays" / "array.sh")], cwd=tmp_path, env=env, capture_output=True
    )
    assert run.returncode == 0, run.stderr
    assert jobdirs[1].stdout.read_text() == f"task 1 in {jobdirs[1].path}\n"
    assert jobdirs[1].stderr.read_text() == "err1\n"
    assert not jobdirs[0].stdout.exists() and not jobdirs[2].stdout.exists()
    assert list(tmp_path.rglob("pwned*")) == []


def test_submit_parses_id_and_passes_dependencies(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_bin(bindir, "sbatch", f'printf "%s\\n" "$@" > {tmp_path}/args\necho 17\n')
    jobdir = make_jobdir(tmp_path / "w")
    dep = LaunchedJob(make_jobdir(tmp_path / "w", ident="f" * 64), "12")
    dep2 = LaunchedJob(make_jobdir(tmp_path / "w", ident="e" * 64), "13_4")
    job = submit_command(SlurmLauncher(binpath=bindir), jobdir, ["true"], {}, [dep, dep2])
    assert job.launcher_job_id == "17" and job.jobdir is jobdir
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:3] == ["--parsable", "--dependency=afterok:12:13_4", "--kill-on-invalid-dep=yes"]
    assert args[-1] == str(jobdir.script)
    assert os.access(jobdir.script, os.X_OK)
    with pytest.raises(LauncherError, match="not a Slurm job id"):
        submit_command(
            SlurmLauncher(binpath=bindir), jobdir, ["true"], {}, [LaunchedJob(jobdir, "pid:3")]
        )


def test_sbatch_error_is_a_launcher_error(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_bin(bindir, "sbatch", 'echo "sbatch: error: invalid partition specified: x" >&2\nexit 1\n')
    with pytest.raises(LauncherError, match="invalid partition specified"):
        submit_command(SlurmLauncher(binpath=bindir), make_jobdir(tmp_path), ["true"], {}, [])
    with pytest.raises(LauncherError, match="not found in"):
        submit_command(
            SlurmLauncher(binpath=tmp_path / "nowhere"), make_jobdir(tmp_path), ["true"], {}, []
        )


# --- options -------------------------------------------------------------------------------
def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(LauncherError) as error:
        SlurmLauncher(partitions="gpu")  # type: ignore[call-arg]
    message = str(error.value)
    assert "partitions" in message
    for name in SlurmLauncher.option_names():
        assert name in message


@pytest.mark.parametrize("good", ["90", 90, "1:30", "1:30:00", "2-12", "2-00:00:00", "UNLIMITED"])
def test_a_time_limit_is_checked_when_the_launcher_is_made(good: str | int) -> None:
    assert SlurmLauncher(time=good).time == good
    with pytest.raises(LauncherError, match=r"time='abc' is not a Slurm time limit: write"):
        SlurmLauncher(time="abc")


def test_options_slurm_refuses_are_said_once_in_one_line(
    workdir: Path, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """A partition that does not exist: sbatch refuses every submission the same way, so
    the second is not tried (60 jobs made 8 sbatch calls of two error lines each), and
    each job's reason is one line (#18 trial)."""
    from xpm_test_tasks import Count

    from xpm._experiment import experiment
    from xpm.errors import JobsFailedError

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("squeue", "sacct", "scontrol", "scancel"):
        (bindir / name).symlink_to(str(shutil.which(name)))
    calls = tmp_path / "calls"
    (bindir / "sbatch").write_text(
        f'#!/bin/bash\necho x >> "{calls}"\nexec {shutil.which("sbatch")} "$@"\n'
    )
    (bindir / "sbatch").chmod(0o755)
    launcher = SlurmLauncher(partition="nope", binpath=bindir, poll_interval=0.2)
    with (
        pytest.raises(JobsFailedError),
        experiment(workdir, "refused", progress=False, launcher=launcher),
    ):
        first = Count(n=1).submit()
        time.sleep(1.0)  # past the array window: a second sbatch would be a second call
        second = Count(n=2).submit()
    assert len(calls.read_text().splitlines()) == 1
    for job in (first, second):
        status = job.__xpm_jobdir__.read_status()
        assert status.state == "FAILED" and "\n" not in (status.reason or "")
        assert "sbatch refused this launcher's options" in (status.reason or "")
        assert "Invalid partition" in (status.reason or "")


def test_unknown_sbatch_option_in_options_lists_the_valid_ones() -> None:
    with pytest.raises(LauncherError) as error:
        SlurmLauncher(options={"mail_typ": "END"})
    message = str(error.value)
    assert "did you mean mail-type" in message
    assert "reservation" in message and "cpus_per_task" in message


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"job-name": "x"}, "set by xpm itself"),
        ({"--dependency": "afterok:1"}, "set by xpm itself"),
        ({"cpus-per-task": 2}, "cpus_per_task=... instead"),
        ({"gres": "gpu:1"}, "gpus=... instead"),
    ],
)
def test_options_cannot_override_xpm_or_named_options(options: dict[str, str], match: str) -> None:
    with pytest.raises(LauncherError, match=match):
        SlurmLauncher(options=options)


def test_option_names_and_describe() -> None:
    assert SlurmLauncher.option_names() == [
        "partition", "time", "cpus_per_task", "mem", "gpus", "account", "qos", "constraint",
        "nodes", "options", "array_throttle", "poll_interval", "binpath",
    ]  # fmt: skip
    launcher = SlurmLauncher(partition="p", time=10, options={"mail_type": "END"})
    assert launcher.describe() == {
        "kind": "slurm",
        "partition": "p",
        "time": 10,
        "options": {"mail-type": "END"},
    }
    assert launcher.kind == "slurm" and launcher.supports_dependencies
    assert launcher.max_parallel is None and launcher.poll_interval == 30.0
    assert repr(launcher) == "SlurmLauncher(partition='p', time=10, options={'mail-type': 'END'})"
    with pytest.raises(LauncherError, match="array_throttle"):
        SlurmLauncher(array_throttle=0)


# --- polling, with canned command output ---------------------------------------------------
def test_poll_maps_states_and_falls_back_to_sacct(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    log = tmp_path / "calls.log"
    fake_bin(
        bindir,
        "squeue",
        f'echo "squeue $*" >> {log}\n'
        "cat <<'EOF'\n"
        "1|1|PENDING|Priority|0|\n"
        "2|2|RUNNING|None|0|\n"
        "3|3|COMPLETED|None|0|\n"
        "4|4|FAILED|NonZeroExitCode|768|\n"
        "5|5|TIMEOUT|TimeLimit|15|\n"
        "6|6|CANCELLED|DependencyNeverSatisfied|0|\n"
        "7_1|9|OUT_OF_MEMORY|OutOfMemory|0|\n"
        "8|8|CANCELLED|None|15|\n"
        "EOF\n",
    )
    fake_bin(
        bindir,
        "sacct",
        f'echo "sacct $*" >> {log}\n'
        'case "$*" in *" -c "*|"-c "*) echo "11|NODE_FAIL|0:0"; echo "12|COMPLETED|0:0";;\n'
        '  *) echo "Slurm accounting storage is disabled" >&2; exit 1;; esac\n',
    )
    ids = ["1", "2", "3", "4", "5", "6", "7_1", "8", "11", "12", "13"]
    jobs = [LaunchedJob(make_jobdir(tmp_path, ident=f"{i:064x}"), j) for i, j in enumerate(ids)]
    launcher = SlurmLauncher(binpath=bindir)
    outcomes = launcher.poll(jobs)
    got = {k: (v.state, v.reason, v.exit_code, v.signal) for k, v in outcomes.items()}
    assert got == {
        "1": ("SUBMITTED", "slurm: PENDING (Priority)", None, None),
        "2": ("RUNNING", "slurm: RUNNING", None, None),
        "3": ("DONE", None, 0, None),
        "4": ("FAILED", "slurm: FAILED", 3, None),
        "5": ("FAILED", "slurm: TIMEOUT", None, 15),
        "6": ("FAILED", "dependency failed", None, None),
        "7_1": ("FAILED", "slurm: OUT_OF_MEMORY", None, None),
        "8": ("CANCELLED", "slurm: CANCELLED", None, 15),
        "11": ("FAILED", "slurm: NODE_FAIL", None, None),
        "12": ("DONE", None, 0, None),
    }
    calls = log.read_text().splitlines()
    assert len([c for c in calls if c.startswith("squeue")]) == 1
    assert "--jobs=1,11,12,13,2,3,4,5,6,7,8" in calls[0]  # array tasks by their array
    # sacct: tried once with slurmdbd, then from the completion file (-c), remembered.
    assert [c.split(" ")[1] for c in calls[1:]] == ["--noheader", "-c"]
    launcher.poll(jobs)
    assert len(log.read_text().splitlines()) == len(calls) + 2  # one squeue, one sacct -c


def test_poll_when_squeue_knows_no_id(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_bin(
        bindir, "squeue", 'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n'
    )
    fake_bin(bindir, "sacct", "exit 0\n")
    job = LaunchedJob(make_jobdir(tmp_path), "999999")
    assert SlurmLauncher(binpath=bindir).poll([job]) == {}
    fake_bin(bindir, "squeue", 'echo "slurm_load_jobs error: Socket timed out" >&2; exit 1\n')
    with pytest.raises(LauncherError, match="squeue failed"):
        SlurmLauncher(binpath=bindir).poll([job])
    assert SlurmLauncher(binpath=bindir).poll([]) == {}


def test_cancel_is_one_scancel(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_bin(bindir, "scancel", f'echo "$@" >> {tmp_path}/log\n')
    jobs = [LaunchedJob(make_jobdir(tmp_path, ident=f"{i:064x}"), j) for i, j in enumerate("123")]
    SlurmLauncher(binpath=bindir).cancel(jobs)
    SlurmLauncher(binpath=bindir).cancel([])
    assert (tmp_path / "log").read_text() == "1 2 3\n"


# --- a real cluster ------------------------------------------------------------------------
@pytest.mark.slurm
def test_real_job_done(slurm_launcher: SlurmLauncher, tmp_path: Path) -> None:
    jobdir = make_jobdir(tmp_path / "work dir")
    job = submit_command(slurm_launcher,
        jobdir, ["bash", "-c", 'echo "$XPM_GREETING" > result.txt; echo out'],
        {"XPM_GREETING": "hello $world"}, [],
    )  # fmt: skip
    outcome = wait_for_states(slurm_launcher, [job])[job.launcher_job_id]
    assert (outcome.state, outcome.exit_code) == ("DONE", 0)
    assert (jobdir.path / "result.txt").read_text() == "hello $world\n"
    assert jobdir.stdout.read_text() == "out\n"


@pytest.mark.slurm
def test_real_hostile_path(slurm_launcher: SlurmLauncher, tmp_path: Path) -> None:
    jobdir = make_jobdir(tmp_path / 'it\'s $(touch pwned); echo %j "q"')
    job = submit_command(slurm_launcher, jobdir, ["bash", "-c", "echo ok; echo bad >&2"], {}, [])
    assert wait_for_states(slurm_launcher, [job])[job.launcher_job_id].state == "DONE"
    assert jobdir.stdout.read_text() == "ok\n"
    assert jobdir.stderr.read_text() == "bad\n"
    assert list(tmp_path.rglob("pwned*")) == []


@pytest.mark.slurm
def test_real_job_failed_with_exit_code(slurm_launcher: SlurmLauncher, tmp_path: Path) -> None:
    job = submit_command(slurm_launcher, make_jobdir(tmp_path), ["bash", "-c", "exit 3"], {}, [])
    outcome = wait_for_states(slurm_launcher, [job])[job.launcher_job_id]
    assert (outcome.state, outcome.reason, outcome.exit_code) == ("FAILED", "slurm: FAILED", 3)


@pytest.mark.slurm
def test_real_cancel_while_running(slurm_launcher: SlurmLauncher, tmp_path: Path) -> None:
    job = submit_command(slurm_launcher, make_jobdir(tmp_path), ["sleep", "60"], {}, [])
    wait_for_states(slurm_launcher, [job], {"RUNNING"})
    slurm_launcher.cancel([job])
    outcome = wait_for_states(slurm_launcher, [job])[job.launcher_job_id]
    assert (outcome.state, outcome.reason) == ("CANCELLED", "slurm: CANCELLED")


@pytest.mark.slurm
def test_real_dependency_on_failed_job(slurm_launcher: SlurmLauncher, tmp_path: Path) -> None:
    first = submit_command(
        slurm_launcher,
        make_jobdir(tmp_path, ident="a" * 64),
        ["bash", "-c", "sleep 1; exit 1"],
        {},
        [],
    )
    second = submit_command(
        slurm_launcher, make_jobdir(tmp_path, ident="b" * 64), ["touch", "ran"], {}, [first]
    )
    assert slurm_launcher.poll([second])[second.launcher_job_id].state == "SUBMITTED"
    outcomes = wait_for_states(slurm_launcher, [first, second])
    assert outcomes[first.launcher_job_id].state == "FAILED"
    assert outcomes[second.launcher_job_id].state in ("CANCELLED", "FAILED")
    assert outcomes[second.launcher_job_id].reason == "dependency failed"
    assert not (second.jobdir.path / "ran").exists()


@pytest.mark.slurm
def test_real_dependency_chain_succeeds(slurm_launcher: SlurmLauncher, tmp_path: Path) -> None:
    first = submit_command(
        slurm_launcher,
        make_jobdir(tmp_path, ident="a" * 64),
        ["bash", "-c", f"echo 1 > {tmp_path}/f"],
        {},
        [],
    )
    second = submit_command(
        slurm_launcher,
        make_jobdir(tmp_path, ident="b" * 64),
        ["bash", "-c", f"cat {tmp_path}/f"],
        {},
        [first],
    )
    outcomes = wait_for_states(slurm_launcher, [first, second])
    assert {o.state for o in outcomes.values()} == {"DONE"}
    assert second.jobdir.stdout.read_text() == "1\n"


@pytest.mark.slurm
def test_real_job_array(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    launcher = SlurmLauncher(poll_interval=0.2, array_throttle=2)
    jobdirs = [make_jobdir(tmp_path / "w s", ident=f"{i:064x}") for i in range(3)]
    commands = [["bash", "-c", f"echo task {i}; exit {1 if i == 2 else 0}"] for i in range(3)]
    jobs = submit_array_commands(launcher, jobdirs, commands, {}, array_dir=tmp_path / "arrays")
    outcomes = wait_for_states(launcher, jobs)
    states = [outcomes[j.launcher_job_id].state for j in jobs]
    assert states == ["DONE", "DONE", "FAILED"]
    assert outcomes[jobs[2].launcher_job_id].exit_code == 1
    assert [d.stdout.read_text() for d in jobdirs] == ["task 0\n", "task 1\n", "task 2\n"]


@pytest.mark.slurm
def test_real_array_task_cancelled_while_pending_after_its_siblings_ended(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """A pending task scancelled on its own leaves no record in Slurm.  Once its siblings
    have run and ended it must still read CANCELLED, not be forgotten (then FAILED as
    lost): the suite saw that race once when the experiment polled after they ended."""
    launcher = SlurmLauncher(poll_interval=0.2, options={"hold": True})
    jobdirs = [make_jobdir(tmp_path, ident=f"{i:064x}") for i in range(3)]
    for jobdir in jobdirs:
        jobdir.add_event("SUBMITTED", launcher="slurm")  # as the scheduler does first
    commands = [["bash", "-c", f"echo task {i}"] for i in range(3)]
    jobs = submit_array_commands(launcher, jobdirs, commands, {}, array_dir=tmp_path / "arrays")
    array = jobs[0].launcher_job_id.partition("_")[0]
    subprocess.run(["scancel", jobs[1].launcher_job_id], check=True)
    subprocess.run(["scontrol", "release", array], check=True)
    ended = wait_for_states(launcher, [jobs[0], jobs[2]])
    assert {o.state for o in ended.values()} == {"DONE"}
    outcome = launcher.poll([jobs[1]])[jobs[1].launcher_job_id]  # asked for on its own
    assert (outcome.state, outcome.reason) == (
        "CANCELLED",
        "slurm: CANCELLED (taken out of its array while pending)",
    )
    assert not jobdirs[1].stdout.exists()  # it never ran


def logging_wrappers(bindir: Path, log: Path, hide_from_squeue: bool = False) -> None:
    """Wrappers for the Slurm commands that log each call, then run the real command."""
    for name in ("sbatch", "squeue", "sacct", "scontrol", "scancel"):
        real = shutil.which(name)
        assert real is not None
        if name == "squeue" and hide_from_squeue:  # a squeue that forgot every job
            fake_bin(bindir, name, f'echo "{name} $*" >> {log}\n{real} "$@" > /dev/null\n')
        else:
            fake_bin(bindir, name, f'echo "{name} $*" >> {log}\nexec {real} "$@"\n')


@pytest.mark.slurm
def test_real_one_squeue_per_poll(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    bindir, log = tmp_path / "bin", tmp_path / "calls.log"
    logging_wrappers(bindir, log)
    launcher = SlurmLauncher(binpath=bindir, poll_interval=0.2)
    jobs = [
        submit_command(launcher, make_jobdir(tmp_path, ident=f"{i:064x}"), ["sleep", "0.5"], {}, [])
        for i in range(5)
    ]
    log.write_text("")
    polls = 0
    while True:
        outcomes = launcher.poll(jobs)
        polls += 1
        calls = log.read_text().splitlines()
        assert len(calls) == polls and all(c.startswith("squeue ") for c in calls), calls
        if len(outcomes) == 5 and all(o.state == "DONE" for o in outcomes.values()):
            break
        assert polls < 200
        time.sleep(0.2)
    assert polls > 1


@pytest.mark.slurm
def test_real_sacct_fallback_is_one_call(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    bindir, log = tmp_path / "bin", tmp_path / "calls.log"
    logging_wrappers(bindir, log, hide_from_squeue=True)
    launcher = SlurmLauncher(binpath=bindir, poll_interval=0.2)
    jobs = [
        submit_command(
            launcher, make_jobdir(tmp_path, ident=f"{i:064x}"), ["bash", "-c", f"exit {i}"], {}, []
        )
        for i in range(3)
    ]
    real = SlurmLauncher(poll_interval=0.2)
    wait_for_states(real, jobs)
    log.write_text("")
    outcomes = launcher.poll(jobs)
    first = log.read_text().splitlines()
    assert [c.split(" ")[0] for c in first][:1] == ["squeue"]
    assert 1 <= len([c for c in first if c.startswith("sacct")]) <= 2  # detects accounting
    log.write_text("")
    assert launcher.poll(jobs) == outcomes
    assert [c.split(" ")[0] for c in log.read_text().splitlines()] == ["squeue", "sacct"]
    assert [(outcomes[j.launcher_job_id].state, outcomes[j.launcher_job_id].exit_code) for j in jobs] == [
        ("DONE", 0), ("FAILED", 1), ("FAILED", 2),
    ]  # fmt: skip


@pytest.mark.slurm
@pytest.mark.slow
def test_real_walltime_kill(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    launcher = SlurmLauncher(time=1, poll_interval=1.0)
    jobdir = make_jobdir(tmp_path)
    job = submit_command(launcher, jobdir, ["sleep", "600"], {}, [])
    outcome = wait_for_states(launcher, [job], timeout=150)[job.launcher_job_id]
    assert (outcome.state, outcome.reason) == ("FAILED", "slurm: TIMEOUT")
    assert "DUE TO TIME LIMIT" in jobdir.stderr.read_text()


@pytest.mark.slurm
def test_real_poll_of_20000_ids_fits_the_argument_limit(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """10,000 tasks of an array with an 8-digit id and 10,000 separate 8-digit jobs, polled
    with the real squeue and sacct: one ``--jobs=`` list of them all is over Linux's 128 KiB
    limit for one argument (E2BIG, "Argument list too long", issue 18.3).  Array tasks are
    asked for by their array id; other ids go in lists that fit."""
    bindir, log = tmp_path / "bin", tmp_path / "calls.log"
    logging_wrappers(bindir, log)
    launcher = SlurmLauncher(binpath=bindir, poll_interval=0.2)
    jobdirs = [make_jobdir(tmp_path, ident=f"{i:064x}") for i in range(2)]
    real = submit_array_commands(launcher, jobdirs, [["true"], ["true"]], {}, tmp_path / "array")
    wait_for_states(launcher, real)
    fake_dir = make_jobdir(tmp_path, ident="f" * 64)
    fake = [LaunchedJob(fake_dir, f"99999999_{i}") for i in range(10_000)]
    fake += [LaunchedJob(fake_dir, str(90_000_000 + i)) for i in range(10_000)]
    assert len(",".join(j.launcher_job_id for j in fake)) > 128 * 1024
    log.write_text("")
    outcomes = launcher.poll([*real, *fake])
    assert {k: o.state for k, o in outcomes.items()} == {j.launcher_job_id: "DONE" for j in real}
    calls = log.read_text().splitlines()
    squeues = [c for c in calls if c.startswith("squeue")]
    # the array's 10,000 tasks cost one id; the 10,000 separate ids take 3 lists of 30,000 chars
    assert len(squeues) == 4, [c[:80] for c in squeues]
    assert max(len(c) for c in calls) < 32_000


def test_any_oserror_of_a_slurm_command_is_a_launcher_error(tmp_path: Path) -> None:
    """A command that cannot be run (here for real: not executable) is a clear LauncherError,
    which the scheduler's poll loop retries, not a crash with an unexpected OSError."""
    fake_bin(tmp_path, "squeue", "exit 0\n").chmod(0o644)
    launcher = SlurmLauncher(binpath=tmp_path)
    with pytest.raises(LauncherError, match=r"^could not run .*squeue: Permission denied$"):
        launcher.poll([LaunchedJob(make_jobdir(tmp_path), "12")])
