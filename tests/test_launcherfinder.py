"""The resource-spec language, launchers.yaml and find_launcher (no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xpm.errors import LauncherError, SpecError
from xpm.launcherfinder import (
    Accelerator,
    CPURequirement,
    Host,
    LauncherRegistry,
    Requirement,
    explain,
    find_launcher,
    find_launchers_file,
    find_match,
    format_duration,
    format_size,
    launcher_config,
    load_registry,
    local_host,
    parse_duration,
    parse_size,
    parse_spec,
    require_launcher,
    slurm_mem,
    slurm_time,
)

SEED_SPEC = (
    "duration=2 days & cuda(mem=16G) * 4 & cpu(mem=400M, cores=4)"
    " | duration=4 days & cuda(mem=16G) * 2 & cpu(mem=400M, cores=4)"
)

CLUSTER_YAML = """\
hosts:
  - name: local
    type: local
    cpus: 4
    memory: 16G
  - name: gpu-small
    type: slurm
    partition: gpu
    cpus: 32
    memory: 256G
    accelerators:
      - {type: cuda, memory: 16G, count: 2}
    max_duration: 7 days
    priority: 5
    account: proj42
    qos: normal
    constraint: v100
    options:
      exclusive: true
      mail-type: END
  - name: gpu-big
    type: slurm
    partition: gpu-big
    cpus: 64
    memory: 512G
    accelerators:
      - {type: cuda, memory: 16G, count: 4}
    max_duration: 3 days
    priority: 10
    gpu_request: gpus
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> LauncherRegistry:
    return LauncherRegistry.load(write(tmp_path / "launchers.yaml", CLUSTER_YAML))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No XPM_LAUNCHERS, HOME in an empty temporary directory; returns HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("XPM_LAUNCHERS", raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def host(name: str, **kwargs: Any) -> Host:
    return Host(name=name, **kwargs)


def cuda(mem: str, count: int = 1, kind: str = "cuda") -> tuple[Accelerator, ...]:
    return (Accelerator(kind, parse_size(mem)),) * count


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1K", 1000),
        ("400M", 400_000_000),
        ("16G", 16_000_000_000),
        ("2T", 2_000_000_000_000),
        ("1KiB", 1024),
        ("400MiB", 400 * 1024**2),
        ("16GiB", 16 * 1024**3),
        ("2TiB", 2 * 1024**4),
        (" 16 G ", 16_000_000_000),
    ],
)
def test_memory_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1 m", 60),
        ("5min", 300),
        ("5 mins", 300),
        ("1 minute", 60),
        ("90 minutes", 5400),
        ("3h", 3 * 3600),
        ("1 hour", 3600),
        ("12 hours", 12 * 3600),
        ("1d", 86400),
        ("1 day", 86400),
        ("2 days", 2 * 86400),
    ],
)
def test_duration_units(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_spec(f"duration={text}").alternatives[0].duration == seconds


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (16_000_000_000, "16G"),
        (400_000_000, "400M"),
        (16 * 1024**3, "16GiB"),
        (1536 * 1024**2, "1536MiB"),
        (1000 * 1024, "1000KiB"),
        (2_000_000_000_000, "2T"),
        (7, "7B"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_format_duration() -> None:
    assert format_duration(86400) == "1 day"
    assert format_duration(2 * 86400) == "2 days"
    assert format_duration(5400) == "90 minutes"
    assert format_duration(3600) == "1 hour"
    assert format_duration(61) == "61 seconds"


# --------------------------------------------------------------------------- parsing


def test_seed_spec_parses() -> None:
    spec = parse_spec(SEED_SPEC)
    first, second = spec.alternatives
    assert first == Requirement(
        cpu=CPURequirement(mem=400_000_000, cores=4),
        accelerators=cuda("16G", 4),
        duration=2 * 86400,
    )
    assert second.accelerators == cuda("16G", 2)
    assert second.duration == 4 * 86400
    assert str(spec) == SEED_SPEC


def test_str_round_trips() -> None:
    for text in [
        "cpu(cores=2)",
        "gpu() * 3",
        "rocm(mem=8GiB) & cuda(mem=16G) * 2",
        "duration=90 minutes & cpu(mem=1TiB)",
        "cpu()",
    ]:
        spec = parse_spec(text)
        assert parse_spec(str(spec)) == spec
    assert str(parse_spec("cuda(mem=16G)*2&duration=3h")) == "duration=3 hours & cuda(mem=16G) * 2"


def test_whitespace_is_free() -> None:
    tight = parse_spec("duration=2days&cuda(mem=16G)*4&cpu(mem=400M,cores=4)|cpu(cores=1)")
    loose = parse_spec(
        "  duration = 2 days  &  cuda ( mem = 16 G ) * 4 & cpu( mem=400M , cores=4 )\n| cpu(cores = 1) "
    )
    assert tight == loose


def test_and_takes_max_and_concatenates_accelerators() -> None:
    (requirement,) = parse_spec(
        "cpu(mem=1G, cores=2) & cpu(mem=4G) & cpu(cores=8) & duration=1h & duration=2h"
        " & cuda(mem=16G) & gpu() * 2"
    ).alternatives
    assert requirement.cpu == CPURequirement(mem=4_000_000_000, cores=8)
    assert requirement.duration == 7200
    assert requirement.accelerators == (
        Accelerator("cuda", 16_000_000_000),
        Accelerator("gpu"),
        Accelerator("gpu"),
    )
    assert Requirement(duration=10) & Requirement(duration=5) == Requirement(duration=10)


def test_str_of_requirement_objects() -> None:
    assert str(Accelerator("cuda", 16 * 1024**3)) == "cuda(mem=16GiB)"
    assert str(Accelerator("gpu")) == "gpu()"
    assert str(CPURequirement(mem=400_000_000, cores=4)) == "cpu(mem=400M, cores=4)"
    assert str(Requirement()) == "cpu()"


@pytest.mark.parametrize(
    ("spec", "column", "expected", "got"),
    [
        ("cuda(mem=16X)", 10, "a memory size like 16G or 16GiB", "'16X'"),
        ("cuda(mem=32)", 10, "a memory size like 16G or 16GiB", "'32'"),
        ("cuda(mem=16g)", 10, "a memory size like 16G or 16GiB", "'16g'"),
        ("cuda(mem=1.5G)", 10, "a memory size like 16G or 16GiB", "'1.5G'"),
        ("cpu(mem=G)", 9, "a memory size like 16G or 16GiB", "'G'"),
        ("cpu(mem=0G)", 9, "a memory size greater than zero, like 16G or 16GiB", "'0G'"),
        ("cpu(cores=4) & cuda(mem=16X)", 25, "a memory size like 16G or 16GiB", "'16X'"),
        ("", 1, "a requirement: duration=..., cpu(...)", "end of spec"),
        ("   ", 4, "a requirement: duration=..., cpu(...)", "end of spec"),
        ("tpu(mem=16G)", 1, "a requirement: duration=..., cpu(...)", "'tpu'"),
        ("cpu(cores=1) |", 15, "a requirement", "end of spec"),
        ("cpu(cores=1) & | cpu()", 16, "a requirement", "'|'"),
        ("duration=2 weeks", 10, "a duration like 2 days, 12h or 90 minutes", "'2 weeks'"),
        ("duration=2", 10, "a duration like 2 days", "'2'"),
        ("duration=0h", 10, "a duration greater than zero, like 2 days", "'0h'"),
        ("duration 2 days", 10, "'=' after duration", "'2'"),
        ("cpu(cores=0)", 11, "a positive number of cores", "'0'"),
        ("cpu(cores=four)", 11, "a positive number of cores", "'four'"),
        ("cpu(threads=4)", 5, "an argument name (mem or cores)", "'threads'"),
        ("cuda(cores=4)", 6, "an argument name (mem)", "'cores'"),
        ("cpu(mem=1G, mem=2G)", 13, "each argument once", "a second 'mem'"),
        ("cpu(cores=4", 12, "',' or ')'", "end of spec"),
        ("cpu(cores=4 mem=1G)", 13, "',' or ')'", "'mem'"),
        ("cpu cores=4", 5, "'('", "'cores'"),
        ("cuda(mem=16G) * ", 17, "a positive GPU count after '*'", "end of spec"),
        ("cuda(mem=16G) * 0", 17, "a positive GPU count after '*'", "'0'"),
        ("cpu(cores=4) cuda()", 14, "'&', '|' or end of spec", "'cuda'"),
        ("cpu(cores=4) * 2", 14, "'&', '|' or end of spec", "'*'"),
    ],
)
def test_spec_errors(spec: str, column: int, expected: str, got: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    message = str(info.value)
    assert message.startswith(f"spec error at column {column}: expected {expected}")
    assert f', got {got} in "{spec}"' in message
    assert "\n" not in message


def test_spec_error_is_a_launcher_error() -> None:
    with pytest.raises(LauncherError):
        parse_spec("cuda(mem=16X)")


@pytest.mark.parametrize("text", ["16", "16X", "16 GB", "16G trailing", "", "-1G"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(SpecError, match="memory size|end of spec"):
        parse_size(text)


# --------------------------------------------------------------------------- matching


def test_cpu_memory_and_duration_mismatches() -> None:
    requirement = parse_spec("cpu(mem=8G, cores=4) & duration=2 days").alternatives[0]
    small = host("small", cores=2, memory=parse_size("4G"), max_duration=86400)
    assert requirement.mismatches(small) == [
        "needs 4 cores, has 2",
        "needs 8G memory, has 4G",
        "needs 2 days, allows at most 1 day",
    ]
    exact = host("exact", cores=4, memory=parse_size("8G"), max_duration=2 * 86400)
    assert requirement.mismatches(exact) == []
    unknown = host("unknown")  # nothing declared: nothing checked
    assert requirement.mismatches(unknown) == []


def test_accelerator_count_and_memory() -> None:
    requirement = parse_spec("cuda(mem=16G) * 4").alternatives[0]
    assert requirement.mismatches(host("two", accelerators=cuda("16G", 2))) == [
        "needs 4 cuda GPUs with 16G, has 2"
    ]
    assert requirement.mismatches(host("small", accelerators=cuda("12G", 8))) == [
        "needs 4 cuda GPUs with 16G, has 0 (its GPUs: 8 cuda GPUs with 12G)"
    ]
    assert requirement.mismatches(host("four", accelerators=cuda("16G", 4))) == []
    assert requirement.mismatches(host("bigger", accelerators=cuda("80G", 8))) == []
    assert parse_spec("cuda()").alternatives[0].mismatches(host("none")) == [
        "needs 1 cuda GPU, has 0"
    ]


def test_gpu_matches_any_type_cuda_only_cuda() -> None:
    amd = host("amd", accelerators=cuda("64G", 2, kind="rocm"))
    assert parse_spec("gpu(mem=32G) * 2").alternatives[0].mismatches(amd) == []
    assert parse_spec("rocm(mem=32G)").alternatives[0].mismatches(amd) == []
    assert parse_spec("cuda(mem=32G)").alternatives[0].mismatches(amd) == [
        "needs 1 cuda GPU with 32G, has 0 (its GPUs: 2 rocm GPUs with 64G)"
    ]
    nvidia = host("nvidia", accelerators=cuda("16G"))
    assert parse_spec("gpu()").alternatives[0].mismatches(nvidia) == []
    assert parse_spec("rocm()").alternatives[0].mismatches(nvidia) == [
        "needs 1 rocm GPU, has 0 (its GPUs: 1 cuda GPU with 16G)"
    ]


def test_mixed_accelerators_need_one_each() -> None:
    # One 40G and one 16G card: "cuda(mem=16G) & cuda(mem=40G)" fits only if the 16G
    # request takes the 16G card, whatever the order of the request.
    mixed = host("mixed", accelerators=cuda("40G") + cuda("16G"))
    for text in ["cuda(mem=16G) & cuda(mem=40G)", "cuda(mem=40G) & cuda(mem=16G)"]:
        assert parse_spec(text).alternatives[0].mismatches(mixed) == []
    # Each group alone fits, together they need three cards.
    both = parse_spec("cuda(mem=16G) * 2 & gpu(mem=40G)").alternatives[0]
    reasons = both.mismatches(mixed)
    assert len(reasons) == 1 and "cannot cover them all" in reasons[0]


def test_binary_and_decimal_memory_units_differ() -> None:
    # 16GiB (17.18e9 bytes) is more than 16G (16e9 bytes).
    decimal_card = host("decimal", accelerators=cuda("16G"), memory=parse_size("400M"))
    binary_card = host("binary", accelerators=cuda("16GiB"), memory=parse_size("400MiB"))
    assert parse_spec("cuda(mem=16GiB)").alternatives[0].mismatches(decimal_card) == [
        "needs 1 cuda GPU with 16GiB, has 0 (its GPUs: 1 cuda GPU with 16G)"
    ]
    assert parse_spec("cuda(mem=16G)").alternatives[0].mismatches(binary_card) == []
    assert parse_spec("cpu(mem=400MiB)").alternatives[0].mismatches(decimal_card) == [
        "needs 400MiB memory, has 400M"
    ]
    assert parse_spec("cpu(mem=400M)").alternatives[0].mismatches(binary_card) == []


def test_priority_picks_the_best_host(cluster: LauncherRegistry) -> None:
    match = cluster.find("cuda(mem=16G) * 2")
    assert match is not None
    assert (match.index, match.host.name) == (0, "gpu-big")  # priority 10 over 5


def test_equal_priority_keeps_file_order() -> None:
    registry = LauncherRegistry(hosts=(host("first", priority=1), host("second", priority=1)))
    match = registry.find("cpu(cores=1)")
    assert match is not None and match.host.name == "first"


def test_alternatives_fallback(cluster: LauncherRegistry) -> None:
    # First alternative needs 4 GPUs for 4 days: gpu-big only allows 3 days, gpu-small
    # has 2 GPUs.  The second alternative (2 GPUs for 4 days) fits gpu-small.
    spec = "duration=4 days & cuda(mem=16G) * 4 | duration=4 days & cuda(mem=16G) * 2"
    match = cluster.find(spec)
    assert match is not None
    assert (match.index, match.host.name) == (1, "gpu-small")
    assert match.requirement.duration == 4 * 86400


def test_first_matching_alternative_wins_over_priority(cluster: LauncherRegistry) -> None:
    # Alternative 1 fits local and gpu-small (gpu-big allows only 3 days); alternative 2
    # would pick gpu-big (priority 10), but the first alternative that fits anything wins.
    match = cluster.find("cpu(cores=2) & duration=5 days | cuda(mem=16G)")
    assert match is not None
    assert (match.index, match.host.name) == (0, "gpu-small")


def test_no_match_returns_none_and_explains(cluster: LauncherRegistry, clean_env: Path) -> None:
    spec = "cuda(mem=16G) * 8 | duration=30 days & cuda(mem=16G)"
    assert cluster.find(spec) is None
    assert find_launcher(spec, registry=cluster) is None
    text = explain(spec, registry=cluster)
    lines = text.splitlines()
    assert lines[0] == f"hosts from {cluster.source}"
    assert "alternative 1 (cuda(mem=16G) * 8): no host matches" in lines
    assert "  gpu-small: needs 8 cuda GPUs with 16G, has 2" in lines
    assert "  gpu-big: needs 8 cuda GPUs with 16G, has 4" in lines
    assert "  gpu-small: needs 30 days, allows at most 7 days" in lines
    assert "  local: needs 1 cuda GPU with 16G, has 0" in lines
    assert lines[-1] == "no launcher found"
    with pytest.raises(LauncherError) as info:
        require_launcher(spec, registry=cluster)
    message = str(info.value)
    assert "\n" not in message
    assert "gpu-big: needs 8 cuda GPUs with 16G, has 4" in message
    assert "relax the spec" in message


def test_explain_reports_the_choice(cluster: LauncherRegistry) -> None:
    text = cluster.explain("cuda(mem=16G) * 4 | cpu(cores=1)")
    assert "alternative 1 (cuda(mem=16G) * 4): matches gpu-big (priority 10)" in text
    assert "alternative 2 (cpu(cores=1)): not tried" in text
    assert "  gpu-small: needs 4 cuda GPUs with 16G, has 2" in text


def test_tags_restrict_hosts() -> None:
    registry = LauncherRegistry.from_dict(
        {
            "hosts": [
                {"name": "a", "type": "slurm", "priority": 9},
                {"name": "b", "type": "slurm", "tags": ["big", "fast"]},
            ]
        }
    )
    match = registry.find("cpu(cores=1)", tags=["big"])
    assert match is not None and match.host.name == "b"
    assert registry.find("cpu(cores=1)", tags=["big", "gpu"]) is None
    assert "a: lacks tag 'big'" in registry.explain("cpu()", tags=["big"])
    no_tags = registry.find("cpu(cores=1)")
    assert no_tags is not None and no_tags.host.name == "a"


# --------------------------------------------------------------------------- launcher options


def test_slurm_time_and_mem_formats() -> None:
    assert slurm_time(2 * 86400) == "2-00:00:00"
    assert slurm_time(90 * 60) == "0-01:30:00"
    assert slurm_time(61) == "0-00:02:00"  # rounded up to whole minutes
    assert slurm_mem(16 * 1024**3) == "16G"
    assert slurm_mem(400 * 1024**2) == "400M"
    assert slurm_mem(400_000_000) == "382M"  # Slurm's M is a MiB: round up
    assert slurm_mem(1) == "1M"


def test_slurm_launcher_config(cluster: LauncherRegistry) -> None:
    match = cluster.find("duration=5 days & cuda(mem=16G) * 2 & cpu(mem=400MiB, cores=4)")
    assert match is not None and match.host.name == "gpu-small"
    name, kwargs = match.launcher_config()
    assert name == "SlurmLauncher"
    assert kwargs == {
        "partition": "gpu",
        "time": "5-00:00:00",
        "cpus_per_task": 4,
        "mem": "400M",
        "gpus": 2,
        "account": "proj42",
        "qos": "normal",
        "constraint": "v100",
        "options": {"exclusive": True, "mail-type": "END"},
    }


def test_slurm_gpus_request_and_defaults(cluster: LauncherRegistry) -> None:
    match = cluster.find("gpu() * 3")
    assert match is not None and match.host.name == "gpu-big"
    name, kwargs = match.launcher_config()
    assert name == "SlurmLauncher"
    assert kwargs["gpus"] is None and kwargs["options"] == {"gpus": 3}
    assert kwargs["time"] is None and kwargs["mem"] is None and kwargs["cpus_per_task"] is None
    assert kwargs["partition"] == "gpu-big" and kwargs["account"] is None
    # The host's settings (its Slurm keys, as written) are not modified by adding gpus.
    assert match.host.settings == {"partition": "gpu-big", "gpu_request": "gpus"}


def test_partition_defaults_to_name() -> None:
    slurm = Host(name="short", type="slurm")
    assert launcher_config(slurm, Requirement())[1]["partition"] == "short"


def test_local_launcher_config() -> None:
    local = Host(name="box", type="local", cores=8)
    # As many jobs at once as fit on the host's cores.
    assert launcher_config(local, parse_spec("cpu(cores=1)").alternatives[0]) == (
        "LocalLauncher",
        {"max_parallel": 8},
    )
    assert launcher_config(local, parse_spec("cpu(cores=3)").alternatives[0]) == (
        "LocalLauncher",
        {"max_parallel": 2},
    )
    assert launcher_config(local, parse_spec("duration=1h").alternatives[0]) == (
        "LocalLauncher",
        {"max_parallel": None},
    )


def test_each_backend_configures_itself_and_is_imported_only_when_used(tmp_path: Path) -> None:
    """The launcher classes own how a host and a requirement configure them
    (``options_for``, ``host_keys``): choosing a local host never imports the Slurm
    backend, and a Slurm host gets a configured ``SlurmLauncher`` (#17.1)."""
    code = """
import sys
from xpm.launcherfinder import LauncherRegistry, find_launcher
assert "xpm.launchers.slurm" not in sys.modules and "yaml" not in sys.modules
local = find_launcher("cpu(cores=1)", registry=LauncherRegistry.local_only())
print(type(local).__name__, local.max_parallel, "xpm.launchers.slurm" in sys.modules)
cluster = LauncherRegistry.load(sys.argv[1])
slurm = find_launcher("cuda(mem=16G) & duration=1h", registry=cluster)
print(type(slurm).__name__, slurm.time, slurm.partition)
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(write(tmp_path / "launchers.yaml", CLUSTER_YAML))],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == f"LocalLauncher {local_host().cores} False"
    assert second == "SlurmLauncher 0-01:00:00 gpu-big"


def test_import_does_not_load_yaml_or_backends() -> None:
    code = (
        "import sys, xpm.launcherfinder as f\n"
        "f.parse_spec('cpu(cores=1)')\n"
        "bad = [m for m in ('yaml', 'xpm.launchers.local', 'xpm.launchers.slurm') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- lookup order


def test_no_file_means_local_machine_only(clean_env: Path, tmp_path: Path) -> None:
    assert find_launchers_file(tmp_path / "workdir") is None
    registry = load_registry(tmp_path / "workdir")
    assert registry.source is None
    (only,) = registry.hosts
    assert only.type == "local"
    assert only.cores == os.cpu_count()
    assert only.memory == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert only.accelerators == () and only.max_duration is None
    match = find_match("duration=300 days & cpu(cores=1)")
    assert match is not None and match.host.type == "local"
    assert find_match("cuda()") is None
    assert find_match(f"cpu(cores={(os.cpu_count() or 1) + 1})") is None
    assert explain("cuda()").startswith("no launchers.yaml: local machine only")


def test_lookup_order(clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hosts_file(path: Path, name: str) -> Path:
        return write(path, f"hosts:\n  - {{name: {name}, type: slurm}}\n")

    workdir = tmp_path / "workdir"
    user = hosts_file(clean_env / ".config" / "xpm" / "launchers.yaml", "from-home")
    assert find_launchers_file(workdir) == user
    assert find_launchers_file() == user

    in_workdir = hosts_file(workdir / "launchers.yaml", "from-workdir")
    assert find_launchers_file(workdir) == in_workdir
    assert find_launchers_file() == user  # no workdir given: not looked at

    project = tmp_path / "project"  # the experiment YAML's directory comes first (#19)
    assert find_launchers_file(workdir, beside=project) == in_workdir
    beside = hosts_file(project / "launchers.yaml", "beside-the-yaml")
    assert find_launchers_file(workdir, beside=project) == beside
    assert load_registry(workdir, beside=project).hosts[0].name == "beside-the-yaml"

    from_env = hosts_file(tmp_path / "elsewhere" / "mine.yaml", "from-env")
    monkeypatch.setenv("XPM_LAUNCHERS", str(from_env))
    assert find_launchers_file(workdir) == from_env
    assert find_launchers_file(workdir, beside=project) == from_env
    match = find_match("cpu()", workdir=workdir)
    assert match is not None and match.host.name == "from-env"

    monkeypatch.setenv("XPM_LAUNCHERS", "")  # empty: ignored
    match = find_match("cpu()", workdir=workdir)
    assert match is not None and match.host.name == "from-workdir"


def test_missing_env_file_is_an_error(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPM_LAUNCHERS", str(clean_env / "nope.yaml"))
    with pytest.raises(LauncherError, match=r"XPM_LAUNCHERS=.*nope\.yaml: no such file"):
        find_launchers_file()


def test_registry_argument_may_be_a_path(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yaml", CLUSTER_YAML)
    match = find_match("cuda(mem=16G) * 4", registry=path)
    assert match is not None and match.host.name == "gpu-big"


def test_local_host_in_yaml_detects_missing_values(tmp_path: Path) -> None:
    registry = LauncherRegistry.load(
        write(tmp_path / "l.yaml", "hosts:\n  - {name: here, type: local, max_duration: 12h}\n")
    )
    (here,) = registry.hosts
    assert here.cores == os.cpu_count() and here.memory == local_host().memory
    assert here.max_duration == 12 * 3600


def test_yaml_host_fields(cluster: LauncherRegistry) -> None:
    local, small, big = cluster.hosts
    assert (local.cores, local.memory) == (4, 16_000_000_000)
    assert small.accelerators == cuda("16G", 2)
    assert small.max_duration == 7 * 86400 and small.priority == 5
    assert local.settings == {}
    assert small.settings == {  # a kind's own keys, read by its launcher class
        "partition": "gpu",
        "account": "proj42",
        "qos": "normal",
        "constraint": "v100",
        "options": {"exclusive": True, "mail-type": "END"},
    }
    assert big.settings == {"partition": "gpu-big", "gpu_request": "gpus"}
    assert len(big.accelerators) == 4
    assert "gpu-small (slurm, partition gpu, 32 cores" in str(small)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("- a\n", r"expected a mapping with a 'hosts' list"),
        ("", r"expected a mapping with a 'hosts' list at the top, got nothing"),
        ("host: []\n", r"unknown key 'host'; valid keys: hosts"),
        ("hosts: []\n", r"'hosts' must be a non-empty list"),
        ("hosts:\n  - {type: local}\n", r"hosts\[0\]: missing key 'name'"),
        ("hosts:\n  - {name: a}\n", r"hosts\[0\] \(a\): missing key 'type'"),
        (
            "hosts:\n  - {name: a, type: pbs}\n",
            r"hosts\[0\] \(a\): type: expected one of local, slurm, got str 'pbs'",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, cpu: 4}\n",
            r"hosts\[0\] \(a\): unknown key 'cpu'; valid keys: accelerators, account, "
            r"constraint, cpus, gpu_request, max_duration, memory, name, options, partition, "
            r"priority, qos, tags, type",
        ),
        (
            "hosts:\n  - {name: a, type: local, partition: x}\n",
            r"key 'partition' is only valid for slurm hosts; valid keys for local hosts: "
            r"accelerators, cpus, max_duration",
        ),
        ("hosts:\n  - {name: a, type: slurm, cpus: four}\n", r"cpus: expected an integer >= 1"),
        ("hosts:\n  - {name: a, type: slurm, cpus: 0}\n", r"cpus: expected an integer >= 1"),
        ("hosts:\n  - {name: a, type: slurm, cpus: true}\n", r"cpus: expected an integer"),
        ("hosts:\n  - {name: a, type: slurm, priority: high}\n", r"priority: expected an integer"),
        (
            "hosts:\n  - {name: a, type: slurm, memory: 64}\n",
            r"memory: expected a memory size like 16G or 16GiB .*got int 64",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, memory: 64X}\n",
            r"memory: expected a memory size.*got str '64X'",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, max_duration: 2 weeks}\n",
            r"max_duration: expected a duration like '2 days'",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, max_duration: 48}\n",
            r"max_duration: expected a duration.*got int 48",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, accelerators: {type: cuda}}\n",
            r"accelerators: expected a list",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, accelerators: [{type: cuda, mem: 16G}]}\n",
            r"accelerators\[0\]: unknown key 'mem'; valid keys: count, memory, type",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, accelerators: [{type: tpu, memory: 16G}]}\n",
            r"accelerators\[0\]: type: expected one of cuda, rocm",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, accelerators: [{type: cuda}]}\n",
            r"accelerators\[0\]: missing key 'memory'",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, accelerators: [{type: cuda, memory: 1G, count: 0}]}\n",
            r"accelerators\[0\]: count: expected an integer >= 1",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, options: {time: '1:00:00'}}\n",
            r"options: 'time' is set by xpm",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, options: {cpus_per_task: 2}}\n",
            r"options: 'cpus_per_task' is set by xpm",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, options: {gres: 'gpu:2'}}\n",
            r"options: 'gres' is set by xpm",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, options: {exclusive: [1]}}\n",
            r"options: exclusive: expected a string, integer or boolean",
        ),
        ("hosts:\n  - {name: a, type: slurm, options: [x]}\n", r"options: expected a mapping"),
        ("hosts:\n  - {name: a, type: slurm, tags: big}\n", r"tags: expected a list of strings"),
        (
            "hosts:\n  - {name: a, type: slurm, account: 3}\n",
            r"account: expected a non-empty string",
        ),
        (
            "hosts:\n  - {name: a, type: slurm, gpu_request: gpu}\n",
            r"gpu_request: expected one of gres, gpus",
        ),
        (
            "hosts:\n  - {name: a, type: slurm}\n  - {name: a, type: local}\n",
            r"hosts\[1\]: duplicate host name 'a'",
        ),
        ("hosts: [\n", r"invalid YAML"),
    ],
)
def test_yaml_validation_errors(tmp_path: Path, text: str, pattern: str) -> None:
    path = write(tmp_path / "bad launchers.yaml", text)
    with pytest.raises(LauncherError, match=pattern) as info:
        LauncherRegistry.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


def test_bad_file_found_by_lookup_fails_loudly(clean_env: Path) -> None:
    write(
        clean_env / ".config" / "xpm" / "launchers.yaml",
        "hosts:\n  - {name: a, type: slurm, gpus: 2}\n",
    )
    with pytest.raises(
        LauncherError, match=r"launchers\.yaml: hosts\[0\] \(a\): unknown key 'gpus'"
    ):
        find_launcher("cpu()")


def test_real_launchers_accept_the_options(cluster: LauncherRegistry) -> None:
    """With the backends present, the generated keyword arguments are valid for them."""
    from xpm.launchers import local, slurm

    spec = "duration=2 days & cuda(mem=16G) * 2 & cpu(mem=400M, cores=4)"
    for name in ("gpu-small", "gpu-big"):
        only = LauncherRegistry(hosts=tuple(h for h in cluster.hosts if h.name == name))
        launcher = find_launcher(spec, registry=only)
        assert isinstance(launcher, slurm.SlurmLauncher)
        assert launcher.describe()["time"] == "2-00:00:00"
    launcher = find_launcher("cpu(cores=1)", registry=LauncherRegistry.local_only())
    assert isinstance(launcher, local.LocalLauncher)
    assert launcher.max_parallel == local_host().cores
