"""Dask preload for the local cluster's worker processes: Ctrl-C belongs to the batch driver.

A terminal's Ctrl-C reaches every process of the foreground group, the local workers included;
left alone, each worker would die with a traceback mid-task while the driver is cancelling
cleanly. Workers ignore SIGINT instead and are closed by the driver. Only the local cluster
loads this (workers of a remote cluster keep their own Ctrl-C).

When the driver closes the cluster under a worker busy with a video, that worker's next heartbeat
finds the scheduler gone and Dask logs the failure with a traceback: expected at that moment, and
nothing the user can act on, so local workers drop that one message.
"""

from __future__ import annotations

import logging
import signal
import threading


class _DropShutdownHeartbeat(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to communicate with scheduler during heartbeat" not in record.getMessage()


def dask_setup(worker) -> None:
    """Called by Dask in each worker process at start (also after a worker restart)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _DropShutdownHeartbeat) for f in quiet.filters):
        quiet.addFilter(_DropShutdownHeartbeat())
