"""params.json: readable, complete, and loaded back in another process into an equal object."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import golden_configs
import pytest
from conftest import run_python
from golden_configs import CNN, Activation, Anything, Containers, Ensemble, Level

from xpm._serialize import dumps, load, loads, save
from xpm.errors import SerializationError

LOAD_AND_COMPARE = """
import json, sys
from pathlib import Path
import golden_configs
from xpm._serialize import load

failures = []
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    loaded = load(path)
    original = golden_configs.configurations()[path.stem]()
    recorded = json.loads(path.read_text())
    saved_id = recorded["objects"][recorded["root"]]["identifier"]
    if not (loaded == original):
        failures.append(f"{path.stem}: {loaded!r} != {original!r}")
    if loaded.__identifier__() != original.__identifier__() or loaded.__identifier__().hex != saved_id:
        failures.append(f"{path.stem}: identifier changed")
print(json.dumps({"checked": len(list(Path(sys.argv[1]).glob("*.json"))), "failures": failures}))
"""


def test_round_trip_of_every_golden_config_in_a_fresh_process(tmp_path: Path) -> None:
    builders = golden_configs.configurations()
    for name, build in builders.items():
        save(build(), tmp_path / f"{name}.json")
    script = tmp_path / "check.py"
    script.write_text(LOAD_AND_COMPARE)
    result = run_python(
        f"import sys; sys.argv = ['x', {str(tmp_path)!r}]; exec(open({str(script)!r}).read())",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"checked": len(builders), "failures": []}


def rich() -> Ensemble:
    return Ensemble(
        members=[CNN(n_layers=3, device="cuda"), CNN()],
        by_name={
            "b": CNN(activation="tanh"),
            "a": CNN(n_layers=1),
        },
    )


def test_round_trip_of_every_value_kind_in_process() -> None:
    value = {
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "float": 1.0,
        "int": 1,
        "bool": True,
        "none": None,
        "str": 'é\n"quoted"',
        "path": Path("/data/x y"),
        "enum": Activation.TANH,
        "intenum": Level.HIGH,
        "tuple": (1, (2.0, "3")),
        "list": [[], {}, ()],
        "dict": {"z": 1, "a": {"$config": 5}},  # a user key that looks like a marker
        "config": rich(),
    }
    cfg = Anything(value=value)
    loaded = loads(dumps(cfg))
    assert loaded == cfg and loaded.__identifier__() == cfg.__identifier__()
    v = loaded.value
    assert math.isnan(v["nan"]) and v["inf"] == math.inf and v["ninf"] == -math.inf
    assert type(v["float"]) is float and type(v["int"]) is int and v["bool"] is True
    assert v["enum"] is Activation.TANH and v["intenum"] is Level.HIGH
    assert v["tuple"] == (1, (2.0, "3")) and isinstance(v["tuple"][1], tuple)
    assert isinstance(v["path"], Path) and v["dict"] == {"z": 1, "a": {"$config": 5}}
    assert list(v["dict"]) == ["z", "a"]


def test_params_json_is_readable_and_complete() -> None:
    cfg = Containers(ints=[3, 1], pair=(1, "x"), many=(1.0,), table={"k": 2})
    doc = json.loads(dumps(cfg))
    assert doc["xpm"] == 1
    (obj,) = doc["objects"]
    assert obj["module"] == "golden_configs" and obj["qualname"] == "Containers"
    assert obj["typeid"] == "golden_configs.containers"
    assert obj["identifier"] == cfg.__identifier__().hex
    assert obj["file"] == str(Path(golden_configs.__file__))
    assert obj["values"] == {
        "ints": [3, 1],
        "pair": {"$tuple": [1, "x"]},
        "many": {"$tuple": [1.0]},
        "table": {"$dict": {"k": 2.0}},
    }
    # Meta values and defaults are saved too; 1 and 1.0 stay distinct in the text.
    assert json.loads(dumps(CNN()))["objects"][0]["values"] == {
        "n_layers": 2,
        "activation": "relu",
        "device": "cpu",
    }
    for value in (1, 1.0, True):
        saved = json.loads(dumps(Anything(value=value)))["objects"][0]["values"]["value"]
        assert type(saved) is type(value) and saved == value


def test_shared_nested_config_is_saved_once() -> None:
    shared = CNN(n_layers=6)
    cfg = Ensemble(members=[shared, shared], by_name={"s": shared})
    doc = json.loads(dumps(cfg))
    assert len(doc["objects"]) == 2
    loaded = loads(dumps(cfg))
    assert loaded.members[0] is loaded.members[1] is loaded.by_name["s"]
    assert loaded == cfg


def test_loaded_configs_are_frozen() -> None:
    from xpm.errors import ConfigError

    loaded = loads(dumps(rich()))
    with pytest.raises(ConfigError, match="frozen"):
        loaded.members[0].n_layers = 9


def test_workdir_relative_paths(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    cfg = Anything(value=workdir / "jobs" / "x" / "model.pth")
    doc = json.loads(dumps(cfg, workdir))
    assert doc["objects"][0]["values"]["value"] == {
        "$path": "jobs/x/model.pth",
        "base": "workdir",
    }
    moved = tmp_path / "moved"
    assert loads(dumps(cfg, workdir), moved).value == moved / "jobs" / "x" / "model.pth"
    with pytest.raises(SerializationError, match="workdir-relative path needs the workdir"):
        loads(dumps(cfg, workdir))


SCRIPT = """
import enum, sys
from pathlib import Path
from xpm import Config, Param, Meta
from xpm._serialize import save


class Mode(enum.Enum):
    FAST = 1
    SLOW = 2


class Inner(Config):
    mode: Param[Mode] = Mode.FAST


class Outer(Config):
    inner: Param[Inner]
    paths: Param[tuple[Path, ...]] = ()
    rate: Param[float] = 0.0
    label: Meta[str] = ""


if __name__ == "__main__":
    cfg = Outer(inner=Inner(mode=Mode.SLOW), paths=(Path("a"), Path("/b")), rate=float("nan"),
                label="run")
    save(cfg, Path(sys.argv[1]))
    print(cfg.__identifier__().hex)
"""


@pytest.mark.parametrize("on_path", [True, False], ids=["importable", "file-only"])
def test_script_run_as_main_round_trips_in_another_program(tmp_path: Path, on_path: bool) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "myexp.py").write_text(SCRIPT)
    params = tmp_path / "params.json"
    written = subprocess.run(
        [sys.executable, str(src / "myexp.py"), str(params)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert written.returncode == 0, written.stderr
    hex_id = written.stdout.strip()
    doc = json.loads(params.read_text())
    assert {o["module"] for o in doc["objects"]} == {"__main__"}
    assert {o["typeid"] for o in doc["objects"]} == {"myexp.outer", "myexp.inner"}
    # Another program, elsewhere: the classes come from the recorded file.
    code = textwrap.dedent(
        f"""
        import math
        from pathlib import Path
        from xpm._serialize import load
        cfg = load(Path({str(params)!r}))
        import sys
        myexp = sys.modules["myexp"]  # loaded by load() from the recorded file
        expected = myexp.Outer(inner=myexp.Inner(mode=myexp.Mode.SLOW),
                               paths=(Path("a"), Path("/b")), rate=math.nan, label="run")
        assert type(cfg) is myexp.Outer and cfg.inner.mode is myexp.Mode.SLOW
        assert cfg == expected, (cfg, expected)
        print(cfg.__identifier__().hex, expected.__identifier__().hex)
        """
    )
    if on_path:
        code = f"import sys; sys.path.append({str(src)!r})\n" + code
    loaded = run_python(code, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [hex_id, hex_id]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "params.json is not valid JSON"),
        ('{"xpm": 99}', "not an xpm params document of version 1 (found 99)"),
        ("[]", "not an xpm params document of version 1 (found 'list')"),
        ('{"xpm": 1, "root": 3, "objects": []}', "params.json is malformed near object 3"),
        (
            '{"xpm": 1, "root": 0, "objects": [{"module": "no_such_mod_xyz", "qualname": "A",'
            ' "values": {}}]}',
            "cannot import module 'no_such_mod_xyz' (needed for A)",
        ),
        (
            '{"xpm": 1, "root": 0, "objects": [{"module": "golden_configs", "qualname": "Nope",'
            ' "values": {}}]}',
            "module 'golden_configs' has no class 'Nope'",
        ),
        (
            '{"xpm": 1, "root": 0, "objects": [{"module": "golden_configs", "qualname": "CNN",'
            ' "values": {"n_layers": {"$what": 1}}}]}',
            "params.json has an unknown value {'$what': 1}",
        ),
    ],
)
def test_unreadable_documents_raise_serialization_errors(text: str, message: str) -> None:
    with pytest.raises(SerializationError) as info:
        loads(text)
    assert message in str(info.value)


def test_load_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="does not exist"):
        load(tmp_path / "nope.json")
