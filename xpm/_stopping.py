"""How a run stops: on Ctrl-C, and on SIGTERM or SIGHUP, which end it as Ctrl-C does;
while it cancels its jobs and records its end, further signals are only noted.

Mixed into :class:`xpm.Experiment` (xpm/_experiment.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._vocabulary import caught_signal_reason

if TYPE_CHECKING:
    from ._scheduler import Scheduler


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached a running experiment: it stops as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(caught_signal_reason(self.name))


#: Signals a running (not detached) experiment handles as Ctrl-C: what `kill`, systemd, a
#: batch system's job end and a closed ssh session send.
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


class StopSignals:
    """How a run stops (a part of :class:`xpm.Experiment`)."""

    scheduler: Scheduler
    _echo: Callable[[str], None]
    _previous_handlers: dict[int, Any]
    _stopped_by: Terminated | None

    def _handle_stop_signals(self, raise_them: bool) -> None:
        """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (``raise_them``),
        so the run ends as on Ctrl-C, or are only noted (SIGINT too) while the run cancels
        its jobs and records its end.

        Only the first one raises: a second (systemd repeats, a user insists) must not cut
        the cancelling short.  Python-level handlers, not ``SIG_IGN``: processes started
        later (jobs started fresh) must not inherit an ignored SIGTERM.
        """
        import signal

        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (and get the exception)

        def stop(signum: int, _frame: object) -> None:
            self._handle_stop_signals(raise_them=False)
            self._stopped_by = Terminated(signum)
            raise self._stopped_by

        def noted(_signum: int, _frame: object) -> None:
            self._echo(
                "xpm: already stopping: waiting for its jobs to stop and recording the "
                "run's end (kill -9 is safe: the next run recovers)"
            )

        names = STOP_SIGNALS if raise_them else ("SIGINT", *STOP_SIGNALS)
        for name in names:
            signum = getattr(signal, name)
            previous = signal.signal(signum, stop if raise_them else noted)
            self._previous_handlers.setdefault(signum, previous)

    def _restore_stop_signals(self) -> None:
        import signal

        handlers, self._previous_handlers = self._previous_handlers, {}
        for signum, previous in handlers.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    def _interrupt(self) -> None:
        # A second Ctrl-C must not cut the cancelling and the run's record short.
        self._handle_stop_signals(raise_them=False)
        why = "interrupted" if self._stopped_by is None else str(self._stopped_by)
        self._echo(f"xpm: {why}; stopping running jobs (a new run resumes from here)")
        self.scheduler.cancel_all(why)
