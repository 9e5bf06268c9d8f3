"""``xpm run-experiment``: run an experiment YAML file."""

from __future__ import annotations

from pathlib import Path

import click

from .._vocabulary import DIRTY_POLICIES, RUN_MODES


@click.command("run-experiment")
@click.argument("yaml_file", metavar="FILE.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--run-mode",
    type=click.Choice(RUN_MODES),
    default=None,
    help="normal: run and wait; generate: only write job directories; dry-run: write "
    "nothing, print the plan.  [default: the YAML's run_mode, else normal]",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workdir [default: the YAML's workdir:, else $XPM_WORKDIR, else xpm-workdir at the "
    "root of the YAML's git repository, else beside the YAML].",
)
@click.option(
    "-c",
    "--config",
    "overrides",
    metavar="KEY=VALUE",
    multiple=True,
    help="Override a YAML key (value parsed as YAML: -c n_layers=[3,4]; dotted keys for "
    "nested configurations: -c model.dim=64).  Repeatable.",
)
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Run at most N jobs at the same time.",
)
@click.option(
    "--dirty-git",
    type=click.Choice(DIRTY_POLICIES),
    default=None,
    help="What to do when the git working tree has uncommitted changes.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Return once every job is handed to its launcher (Slurm jobs go on after logout; "
    "a later run re-attaches to them).",
)
def run_experiment(
    yaml_file: Path,
    run_mode: str | None,
    workdir: Path | None,
    overrides: tuple[str, ...],
    max_parallel: int | None,
    dirty_git: str | None,
    detach: bool,
) -> None:
    """Run the experiment described by FILE.yaml.

    The YAML names the Python module (file: experiment, beside the YAML; or module:
    pkg.mod) whose run(helper, cfg) is called with the checked configuration.  Exit
    status 1 when jobs failed, 2 when the YAML or an option is wrong (nothing written).
    """
    from ..experiments import run_experiment_file

    run_experiment_file(
        yaml_file,
        overrides=overrides,
        run_mode=run_mode,
        workdir=workdir,
        max_parallel=max_parallel,
        dirty_git=dirty_git,
        detach=detach,
    )
