"""docs/cli.md is generated from --help and documents every command and option."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from xpm.cli import COMMANDS, cli
from xpm.cli._docs import iter_commands, render

DOC = Path(__file__).parent.parent / "docs" / "cli.md"


def test_cli_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run `python -m xpm.cli._docs > docs/cli.md`"
    )


def test_every_command_and_option_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    commands = list(iter_commands(cli))
    assert {path[1] for path, _ in commands if len(path) > 1} == set(COMMANDS)
    for path, command in commands:
        heading = f"# `{' '.join(path)}`\n"
        assert heading in text, f"{' '.join(path)} is missing from docs/cli.md"
        section = text.split(heading, 1)[1].split("\n#", 1)[0]
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    assert opt in section, f"{' '.join(path)} {opt} is missing from docs/cli.md"


def test_shell_completion_is_documented_and_works(tmp_path: Path) -> None:
    assert "_XPM_COMPLETE=bash_source xpm" in DOC.read_text(encoding="utf-8")
    env = {**os.environ, "_XPM_COMPLETE": "bash_source"}
    script = subprocess.run(["xpm"], env=env, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_xpm_completion" in script.stdout
    env = {**os.environ, "_XPM_COMPLETE": "bash_complete", "COMP_WORDS": "xpm jobs l",
           "COMP_CWORD": "2"}  # fmt: skip
    words = subprocess.run(["xpm"], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,list" in words.stdout and "plain,log" in words.stdout
