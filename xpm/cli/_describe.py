"""``xpm describe module:Class``: the parameters of a configuration or task."""

from __future__ import annotations

import click


def load_class(reference: str) -> type:
    """Import ``module:Class`` (the module is looked up from the current directory first)."""
    import importlib
    import importlib.util
    import os
    import sys

    from ..errors import UsageError

    module_name, sep, qualname = reference.partition(":")
    if not sep or not module_name or not qualname:
        raise UsageError(
            f"{reference!r}: expected MODULE:CLASS (e.g. xpm describe experiment:Learn)"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UsageError(
            f"no module named {module_name!r} (looked in {cwd} and on sys.path); "
            "run xpm from the directory that holds it, or install it"
        )
    module = importlib.import_module(module_name)
    value: object = module
    for part in qualname.split("."):
        if not hasattr(value, part):
            names = sorted(  # the classes it defines, not those it imports
                n
                for n, v in vars(module).items()
                if isinstance(v, type) and v.__module__ == module.__name__
            )
            from .._suggest import suggest

            raise UsageError(
                f"module {module_name!r} ({getattr(module, '__file__', '?')}) has no {qualname!r}"
                f"{suggest(part, names)} (classes: {', '.join(names) or 'none'})"
            )
        value = getattr(value, part)
    if not isinstance(value, type):
        raise UsageError(f"{reference} is a {type(value).__name__}, not a class")
    return value


@click.command("describe")
@click.argument("reference", metavar="MODULE:CLASS")
def describe(reference: str) -> None:
    """Show the parameters of a configuration or task: kind, type, default and doc.

    Also works for the @configuration class of an experiment (its YAML keys).
    """
    from .._config import Config
    from .._config import describe as describe_config
    from ..errors import UsageError
    from ..experiments import describe_configuration, is_configuration

    cls = load_class(reference)
    if isinstance(cls, type) and issubclass(cls, Config):
        click.echo(describe_config(cls))
    elif is_configuration(cls):
        click.echo(describe_configuration(cls))
    else:
        raise UsageError(f"{reference} is neither an xpm Config/Task nor a @configuration class")
