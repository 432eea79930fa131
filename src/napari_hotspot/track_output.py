"""The output folder of `napari-hotspot track` (``masks/`` and ``hotspots.csv``), committed as one step.

A run writes its whole output into a hidden partial folder beside them (``.track-partial-<pid>-<id>``),
fsyncs it, then writes a small commit record (``.track-commit.json``, atomically). From that moment
the new output is decided: ``masks/`` and ``hotspots.csv`` are moved in by an idempotent roll-forward
that the run performs and, after a kill at any instant, the next run or any reader of the folder
(``recover_track_dir``) completes. Before the record exists the folder holds the complete old output;
after the roll-forward the complete new one. Leftovers of dead runs are removed on recovery.
No heavy imports: readers call this before reading a track folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from .errors import ProjectIOError
from .fileio import atomic_write, crash_point, describe_os_error, fsync_dir, pid_alive, write_bytes_checked

COMMIT_FILE = ".track-commit.json"
COMMIT_FORMAT = "napari-hotspot-track-commit"
PARTIAL_TAG = ".track-partial-"
OLD_TAG = ".track-old-"
MASKS = "masks"
HOTSPOTS = "hotspots.csv"
HOTSPOT_COLUMNS = ["frame", "object_id", "x", "y", "visible", "confidence", "source"]
ITEMS = (MASKS, HOTSPOTS)  # moved in this order; a reader that recovers first sees both or neither
# Left by versions before the commit record: their partial masks and moved-away old masks.
_LEGACY = (".masks.partial", "masks.old", ".write_test")


def _owner(name: str, tag: str) -> int | None:
    pid = name[len(tag):].partition("-")[0]
    return int(pid) if pid.isdigit() else None


def _alive_elsewhere(pid: int | None) -> bool:
    return pid is not None and pid != os.getpid() and pid_alive(pid)


# A project folder's own file (`annotations.project.PROJECT_FILE`; not imported: this module stays light).
_PROJECT_FILE = "project.json"


def check_replaceable(out_dir: str | os.PathLike) -> None:
    """Refuse an output folder whose ``masks/`` or ``hotspots.csv`` a run would replace but that are not an
    earlier run's output: a saved project (its annotations would be lost), or a ``masks`` that is a file or
    holds anything but label PNGs. A folder without them, or with an earlier run's, passes."""
    out_dir = Path(out_dir)
    if (out_dir / _PROJECT_FILE).exists():
        raise ProjectIOError(f"{out_dir} is a napari-hotspot project folder ({_PROJECT_FILE}): writing the track "
                             f"output there would replace its masks; choose another output folder")
    masks, hotspots = out_dir / MASKS, out_dir / HOTSPOTS
    if masks.exists() or masks.is_symlink():
        if not masks.is_dir():
            raise ProjectIOError(f"{masks} is a file, not an earlier track output's masks folder: not replacing "
                                 "it; choose another output folder")
        try:
            other = sorted(e.name for e in masks.iterdir() if not (e.is_file() and e.suffix.lower() == ".png"))
        except OSError as exc:
            raise ProjectIOError(f"cannot read {masks}: {describe_os_error(exc)}") from exc
        if other:
            shown = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
            raise ProjectIOError(f"{masks} holds files a track output does not ({shown}): not replacing it; "
                                 "choose another output folder")
    if hotspots.exists() and not hotspots.is_file():
        raise ProjectIOError(f"{hotspots} is not a file: not replacing it; choose another output folder")


def new_partial(out_dir: str | os.PathLike) -> Path:
    """A fresh hidden folder in ``out_dir`` to write a run's ``masks/`` and ``hotspots.csv`` into
    (after recovering what an earlier killed run left; creating it checks the folder is writable).
    Refuses a folder whose outputs are not an earlier run's (`check_replaceable`)."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        recover_track_dir(out_dir)  # a killed run's half-done commit is completed before the check
        check_replaceable(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        recover_track_dir(out_dir)
        partial = out_dir / f"{PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        partial.mkdir()
        (partial / MASKS).mkdir()
    except OSError as exc:
        raise ProjectIOError(f"cannot write to output folder {out_dir}: {describe_os_error(exc)}") from exc
    return partial


@contextlib.contextmanager
def writing(out_dir: str | os.PathLike):
    """``with writing(out_dir) as partial:`` write ``partial/masks/*.png`` and ``write_hotspots(partial,
    ...)``; a clean exit commits them, an exception removes the partial folder (unless its commit
    record was written: then the next recovery rolls it forward)."""
    out_dir = Path(out_dir)
    made = not out_dir.exists()
    partial = new_partial(out_dir)
    try:
        yield partial
        commit(out_dir, partial)
    except BaseException:
        record = _read_record(out_dir) if out_dir.is_dir() else None
        if not (record and record.get("partial") == partial.name):
            shutil.rmtree(partial, ignore_errors=True)
            if made:  # a failed first run leaves no empty output folder behind
                with contextlib.suppress(OSError):
                    out_dir.rmdir()
        raise


def write_hotspots(partial: Path, rows, columns=HOTSPOT_COLUMNS) -> None:
    """The run's hotspots.csv into its partial folder (checked, fsynced)."""
    import csv
    import io

    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(rows)
    path = Path(partial) / HOTSPOTS
    try:
        write_bytes_checked(path, text.getvalue().encode("utf-8"), fsync=True)
    except OSError as exc:
        raise ProjectIOError(f"cannot write {path}: {describe_os_error(exc)}") from exc


def commit(out_dir: str | os.PathLike, partial: Path) -> None:
    """Make ``partial``'s complete output the folder's output, as one step (see the module doc)."""
    out_dir = Path(out_dir)
    partial = Path(partial)
    try:
        recover_track_dir(out_dir, keep=partial)  # another run's commit finishes first
        for item in ITEMS:
            if not (partial / item).exists():
                raise ProjectIOError(f"internal error: the new output lacks {item} ({partial})")
        fsync_dir(partial / MASKS)
        fsync_dir(partial)
        record = {"format": COMMIT_FORMAT, "pid": os.getpid(), "partial": partial.name,
                  "old": f"{OLD_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"}
        with atomic_write(out_dir / COMMIT_FILE, what="the track commit record", fsync=True) as fh:
            fh.write(json.dumps(record))
        fsync_dir(out_dir)  # the record is on disk: the new output is now the output
        crash_point("track:record")
        _roll_forward(out_dir, record)
    except OSError as exc:
        raise ProjectIOError(f"cannot move the new output into {out_dir}: {describe_os_error(exc)}") from exc


def _read_record(out_dir: Path) -> dict | None:
    try:
        record = json.loads((out_dir / COMMIT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # cannot happen (written atomically), but must not block the folder forever
        return {}
    return record if isinstance(record, dict) else {}


def _roll_forward(out_dir: Path, record: dict) -> None:
    """Move the committed output in; every step can be repeated after a kill at any point."""
    partial_name, old_name = str(record.get("partial", "")), str(record.get("old", ""))
    valid = (record.get("format") == COMMIT_FORMAT and partial_name.startswith(PARTIAL_TAG)
             and old_name.startswith(OLD_TAG) and "/" not in partial_name + old_name)
    partial, old = out_dir / partial_name, out_dir / old_name
    if valid:
        old.mkdir(exist_ok=True)
        for item in ITEMS:
            new, final = partial / item, out_dir / item
            if not new.exists():
                continue  # moved in before the kill
            if new.is_dir():
                if final.exists():
                    os.rename(final, old / item)  # a folder cannot be replaced in one rename
                    crash_point(f"track:{item}-old")
                os.rename(new, final)
            else:
                os.replace(new, final)
            crash_point(f"track:{item}")
        fsync_dir(out_dir)
    (out_dir / COMMIT_FILE).unlink(missing_ok=True)
    fsync_dir(out_dir)
    crash_point("track:unlinked")
    if valid:  # (an unusable record names nothing to delete; the leftover sweep removes the rest)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)


def recover_track_dir(out_dir: str | os.PathLike, wait_s: float = 10.0, keep: Path | None = None) -> None:
    """Finish a commit a killed run left half done and delete the leftovers of dead runs. Every
    reader of a track folder calls this first. Waits (up to ``wait_s``) for a commit another live
    process is making; raises ProjectIOError when the folder cannot be repaired (read-only)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    deadline = time.monotonic() + wait_s
    try:
        while True:
            record = _read_record(out_dir)
            if record is None:
                break
            pid = record.get("pid")
            if _alive_elsewhere(pid if isinstance(pid, int) else None) and time.monotonic() < deadline:
                time.sleep(0.02)  # its own roll-forward takes milliseconds
                continue
            _roll_forward(out_dir, record)
            break
        if not (out_dir / MASKS).exists() and (out_dir / "masks.old").is_dir():
            os.rename(out_dir / "masks.old", out_dir / MASKS)  # an older version's interrupted swap
        for entry in out_dir.iterdir():
            name = entry.name
            if keep is not None and entry == keep:
                continue
            if name.startswith((PARTIAL_TAG, OLD_TAG)):
                tag = PARTIAL_TAG if name.startswith(PARTIAL_TAG) else OLD_TAG
                if _alive_elsewhere(_owner(name, tag)):
                    continue  # a run in another process is writing it
                if _owner(name, tag) == os.getpid() and keep is None and name.startswith(PARTIAL_TAG):
                    continue  # this process's run (a thread) is writing it
            elif name in _LEGACY or (name.startswith(f".{COMMIT_FILE}.") and name.endswith(".tmp")):
                pass
            else:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    except OSError as exc:
        raise ProjectIOError(
            f"{out_dir}: an interrupted `track` run left its output half moved in, and repairing it failed "
            f"({describe_os_error(exc)}); run `track` again with write access to the folder") from exc


def leftovers(out_dir: str | os.PathLike) -> list[str]:
    """Names of temporary entries in a track folder (for tests and the crash benchmark)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(e.name for e in out_dir.iterdir()
                  if e.name.startswith((PARTIAL_TAG, OLD_TAG, COMMIT_FILE, f".{COMMIT_FILE}."))
                  or e.name in _LEGACY)
