"""Atomic file writes shared by the exporters, reports and caches: the data goes to a temporary
sibling that replaces the target only once it is complete, so an interrupted write (full disk,
Ctrl-C, an exception) never leaves a truncated file where a whole one was, nor touches the previous
version. (After a power loss only `fsync=True` writes are sure to be on disk; a process killed
outright can leave its `.<name>.<id>.tmp` sibling behind.)"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from .errors import ProjectIOError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, what: str = "", fsync: bool = False,
                 parents: bool = False):
    """Yield a handle opened on a temporary sibling of `path` (text: UTF-8, newlines as written);
    on success it replaces `path`. `parents` creates missing folders above it first. Any OSError,
    in the caller's writing too, becomes a ProjectIOError naming `what` and the path; on any failure
    the temporary file is removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, mode, **text) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as err:
        label = f"{what} {path}" if what else str(path)
        raise ProjectIOError(f"cannot write {label}: {err.strerror or err}") from err
    finally:  # after a failure, or Ctrl-C in the middle of the write
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
