"""Documentation is part of the product: its snippets run and its links resolve."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_python_snippets_run(page: Path, tmp_path: Path) -> None:
    code = "\n".join(python_blocks(page))
    script = tmp_path / "snippets.py"
    script.write_text(code, encoding="utf-8")
    # This repository's xpm, whichever one is installed.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 0, f"{page.name} snippets failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("page", [*DOCS, ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        if not (page.parent / target).exists():
            dead.append(target)
    assert not dead, f"dead relative links in {page.name}: {dead}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"^(pip install .*pytest.*)$", readme, re.M)
    assert match, "README.md must show the test command (pip install ... && python -m pytest ...)"
    assert match.group(1).strip() in ci, ".ci/run must run the README's test command"


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)


def submits_at_import(code: str) -> list[str]:
    """Classes defined in ``code`` and submitted by its module-level code (outside ``if
    __name__ == "__main__":``): a job process imports the file to find them, which would
    start the experiment again (the job then fails)."""
    tree = ast.parse(code)
    local = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    top = [
        n
        for n in tree.body
        if not isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and not _is_main_guard(n)
    ]
    found: list[str] = []
    for node in (sub for stmt in top for sub in ast.walk(stmt)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "submit"
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id in local
        ):
            found.append(node.func.value.func.id)
    return found


@pytest.mark.parametrize("page", [*DOCS, ROOT / "README.md"], ids=lambda p: p.name)
def test_samples_do_not_submit_their_own_tasks_at_import(page: Path) -> None:
    """Each block, and a page's blocks pasted together, work when saved as a script."""
    blocks = python_blocks(page)
    for code in [*blocks, "\n".join(blocks)] if blocks else []:
        assert not submits_at_import(code), (
            f"{page.name}: a sample submits {submits_at_import(code)} defined in the same file "
            'outside `if __name__ == "__main__":`; saved as a script, its jobs would fail'
        )


def test_submits_at_import_recognises_the_old_readme_sample() -> None:
    old = "class Learn(Task):\n    pass\n\nwith experiment('runs', 'x'):\n    Learn().submit()\n"
    assert submits_at_import(old) == ["Learn"]
    guarded = old.replace("with experiment", "if __name__ == '__main__':\n  with experiment")
    assert submits_at_import(guarded.replace("\n    Learn", "\n      Learn")) == []


def test_readme_samples_run_as_saved_scripts(tmp_path: Path) -> None:
    """The README's samples, each saved as a file and run as ``python FILE`` (twice: the
    second run finds every job done)."""
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no python sample"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XPM_GIT": "off"}
    for i, code in enumerate(blocks):
        folder = tmp_path / f"sample{i}"
        folder.mkdir()
        (folder / "sweep.py").write_text(code, encoding="utf-8")
        for attempt in (1, 2):
            result = subprocess.run(
                [sys.executable, "sweep.py"],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, (
                f"README sample {i}, run {attempt}:\n{result.stderr[-3000:]}"
            )
        assert not list(folder.rglob("failed")), f"README sample {i}: a job failed"
        if "experiment(" in code:
            done = list(folder.rglob("done"))
            assert done, f"README sample {i} ran no job"
            assert f"0 done, {len(done)} already done, 0 failed" in result.stderr
            # What the README says next: `xpm jobs list` in that directory shows them (a
            # trial: the sample's workdir was one no command looked at).
            listed = subprocess.run(
                [sys.executable, "-m", "xpm.cli", "jobs", "list", "--format", "json"],
                cwd=folder,
                env={k: v for k, v in env.items() if k != "XPM_WORKDIR"},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert listed.returncode == 0, listed.stderr
            assert len(json.loads(listed.stdout)) == len(done)


def test_readme_test_command_installs_what_the_tests_need() -> None:
    """#19: the browser tests skipped on a user's machine because the README's command did
    not install playwright; the system parts pip cannot install are named in the README."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    test_extra = pyproject.split("\ntest = [", 1)[1].split("]", 1)[0]
    assert '"playwright' in test_extra
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -q -e '.[test,examples]'" in readme
    assert "tests/slurm/start-local-slurm.sh" in readme and "apt-get install chromium" in readme


def test_the_distribution_name_is_not_taken_by_another_project() -> None:
    """#19: `xpm` on the package index is a library for XPM image files; `pip install xpm`
    must not be what the README says.  The import name and the command stay `xpm`."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    name = re.search(r'^name = "([^"]+)"', pyproject, re.M)
    assert name and name.group(1) == "gitxpm"
    assert 'xpm = "xpm.cli:main"' in pyproject
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install gitxpm" in readme and "pip install xpm" not in readme


def test_browser_skip_reason_reads_as_a_sentence(tmp_path: Path) -> None:
    """#19: the reason read "browser tests need no Chromium at ..."."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("XPM_REQUIRE")}
    env.update(XPM_CHROMIUM=str(tmp_path / "no-chromium"), PATH=str(Path(sys.executable).parent))
    args = ["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/browser", "-x"]
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (
        f"browser test skipped: there is no Chromium at {tmp_path / 'no-chromium'} "
        "(apt-get install chromium)"
    ) in result.stdout
