"""A layer refresh run a moment after the edit that asked for it, so the edit's own result is drawn first.

Requests in between merge into one run; ``flush`` runs a pending one at once (``wait``, closing, tests).
"""

from __future__ import annotations

from collections.abc import Callable


class DeferredRefresh:
    """Run ``run`` ``delay_ms`` after the last ``request``; while ``hold()`` is true (a drag on the layer
    in progress) a due run waits another ``delay_ms`` instead."""

    def __init__(self, run: Callable[[], None], delay_ms: int, hold: Callable[[], bool] = lambda: False):
        self._run = run
        self.delay_ms = int(delay_ms)
        self._hold = hold
        self._timer = None  # made on the first request: the owner is no QObject, so it keeps the timer
        self.pending = False

    def request(self) -> None:
        from qtpy.QtCore import QTimer

        if self._timer is None:
            self._timer = QTimer()
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self.flush)
        self.pending = True
        self._timer.start(self.delay_ms)

    def cancel(self) -> None:
        """Nothing left to do (the layer was just refreshed in full)."""
        self.pending = False
        if self._timer is not None:
            self._timer.stop()

    def flush(self) -> None:
        """The pending run, now (unless held: then after the hold)."""
        if not self.pending:
            return
        if self._hold():
            self._timer.start(self.delay_ms)
            return
        self.cancel()
        self._run()
