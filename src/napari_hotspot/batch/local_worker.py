"""Dask preload for the local cluster's worker processes: Ctrl-C belongs to the batch driver.

A terminal's Ctrl-C reaches every process of the foreground group, the local workers included;
left alone, each worker would die with a traceback mid-task while the driver is cancelling
cleanly. Workers ignore SIGINT instead and are closed by the driver. Only the local cluster
loads this (workers of a remote cluster keep their own Ctrl-C).
"""

from __future__ import annotations

import signal
import threading


def dask_setup(worker) -> None:
    """Called by Dask in each worker process at start (also after a worker restart)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
