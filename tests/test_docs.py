"""Documentation is part of the product: its snippets run and its links resolve."""

from __future__ import annotations

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
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
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
