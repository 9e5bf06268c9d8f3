"""The experiment whose ``with`` block is active, where tasks find it to submit themselves.

Kept apart from :mod:`xpm._experiment` so that :mod:`xpm._task` (and the job side, which
imports it) never imports the experiment machinery.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._experiment import Experiment

#: Set by ``Experiment.__enter__``, reset by ``__exit__``.
ACTIVE: contextvars.ContextVar[Experiment | None] = contextvars.ContextVar(
    "xpm_experiment", default=None
)


def current_experiment() -> Experiment | None:
    """The experiment whose ``with`` block is active (None outside one)."""
    return ACTIVE.get()
