"""The ``xpm`` command line: a thin click layer over the library.

Each command (or command group) lives in its own module and is imported only when it is
run (or when ``--help`` lists it), so ``xpm --help`` stays fast.  To add one, write
``xpm/cli/_<name>.py`` with a click command or group and add it to :data:`COMMANDS`.

Errors: an :class:`xpm.errors.XpmError` prints one line ``xpm: error: <message>`` on
stderr and exits with its ``exit_code`` (2 bad input, 1 failed jobs); click usage
errors exit 2; anything else prints one line and a hint to rerun with ``--debug``,
which shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import StorageError, XpmError

#: Command name -> "module:attribute" of its click command or group (imported lazily).
COMMANDS: dict[str, str] = {
    "describe": "xpm.cli._describe:describe",
    "experiments": "xpm.cli._experiments:experiments",
    "gc-refs": "xpm.cli._git:gc_refs",
    "hooks": "xpm.cli._git:hooks",
    "index": "xpm.cli._index:index",
    "jobs": "xpm.cli._jobs:jobs",
    "launchers": "xpm.cli._launchers:launchers",
    "query": "xpm.cli._query:query",
    "reproduce": "xpm.cli._git:reproduce",
    "results": "xpm.cli._results:results",
    "run-experiment": "xpm.cli._run:run_experiment",
    "serve": "xpm.cli._serve:serve",
}

#: Exit status of an unexpected error (a bug of xpm; the user's run() raising is UserCodeError).
EXIT_UNEXPECTED = 1
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130
#: Exit status when the output's reader went away (``| head``): as a SIGPIPE'd command's.
EXIT_BROKEN_PIPE = 141


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module_name, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):  # a programming error, not user input
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError as error:
            # `xpm jobs` alone: its help, as --help prints it, not as an error line.
            click.echo((error.ctx or ctx).get_help())
            ctx.exit(2)
        except click.UsageError as error:
            # One line like every other user mistake, instead of click's usage block.
            path = error.ctx.command_path if error.ctx is not None else ctx.command_path
            message = error.format_message() + _closest_command(error)
            _report(ctx, f"{message} (see '{path} --help')", traceback_=False)
            ctx.exit(2)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except XpmError as error:
            _report(ctx, str(error))
            ctx.exit(error.exit_code)
        except KeyboardInterrupt as stop:
            # SIGTERM/SIGHUP stop an experiment as Ctrl-C does; the exit status names them.
            signum = getattr(stop, "signum", None)
            _report(ctx, str(stop) if signum else "interrupted", traceback_=False)
            ctx.exit(128 + signum if signum else EXIT_INTERRUPTED)
        except BrokenPipeError:
            # `xpm ... | head`: the reader has all it wanted.  Quiet, as a SIGPIPE'd
            # command would be.
            _stdout_to_null()
            ctx.exit(EXIT_BROKEN_PIPE)
        except OSError as error:
            from .._storage import first_storage_error, storage_error

            full = first_storage_error(error)
            if full is None:
                _unexpected(ctx, error)
            else:
                _report(ctx, str(storage_error(full, Path.cwd())))
                ctx.exit(StorageError.exit_code)
        except Exception as error:  # noqa: BLE001 - the one place that catches everything
            _unexpected(ctx, error)


def _stdout_to_null() -> None:
    """Point stdout at /dev/null: its reader is gone, and the interpreter's flush at exit
    would otherwise report the broken pipe once more."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _unexpected(ctx: click.Context, error: Exception) -> None:
    hint = "" if _debug(ctx) else " (run 'xpm --debug ...' to see the traceback)"
    _report(ctx, f"unexpected {type(error).__name__}: {_one_line(error)}{hint}")
    ctx.exit(EXIT_UNEXPECTED)


def _closest_command(error: click.UsageError) -> str:
    """`` Did you mean 'jobs'?`` for a mistyped (sub)command, or nothing."""
    import difflib
    import re

    found = re.match(r"No such command '(.+)'", error.format_message())
    group = error.ctx.command if error.ctx is not None else None
    if found is None or not isinstance(group, click.Group) or error.ctx is None:
        return ""
    names = group.list_commands(error.ctx)
    close = difflib.get_close_matches(found.group(1), names, n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("XPM_DEBUG", "") not in ("", "0")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 500 else text[:497] + "..."


def _report(ctx: click.Context, message: str, *, traceback_: bool = True) -> None:
    if traceback_ and _debug(ctx):
        traceback.print_exc(file=sys.stderr)
    click.echo(f"xpm: error: {message}", err=True)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show the full traceback of errors (also: XPM_DEBUG=1).",
)
@click.version_option(__version__, "--version", prog_name="xpm", message="%(prog)s %(version)s")
def cli(debug: bool) -> None:
    """xpm: a git-integrated experiment manager.

    Exit codes: 0 success, 1 jobs failed (or an unexpected error), 2 bad input or usage,
    3 a full or read-only disk, 130/143/129 stopped by Ctrl-C/SIGTERM/SIGHUP, 141 the
    output's reader went away (`| head`).
    """


def main(argv: list[str] | None = None) -> None:
    """The ``xpm`` console script."""
    try:
        cli.main(args=argv, prog_name="xpm")
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left before the last buffered output
            _stdout_to_null()


__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]
