"""Atomic file writes shared by the exporters, reports and caches: the data goes to a temporary
sibling that replaces the target only once it is complete, so an interrupted write (full disk,
Ctrl-C, an exception) never leaves a truncated file where a whole one was, nor touches the previous
version. (After a power loss only `fsync=True` writes are sure to be on disk; a process killed
outright can leave its `.<name>.<id>.tmp` sibling behind.)"""

from __future__ import annotations

import contextlib
import os
import uuid
import zipfile
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


def describe_os_error(err: OSError) -> str:
    """A short reason for an OSError, with a plain word for a full disk."""
    import errno

    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full (no space left on device)"
    return err.strerror or str(err)


def describe_write_error(err: OSError) -> str:
    """`describe_os_error`, with plain words for the other reasons a path cannot be written."""
    import errno

    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "not writable (permission denied or read-only file system)"
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a parent of this path is a file, not a folder"
    return describe_os_error(err)


def prepare_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create the folder (and its parents) and check that a file can be written in it, raising a
    ProjectIOError that names the folder and the reason: for commands that would otherwise find out
    only when they write their results, after all the work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ProjectIOError(f"cannot write the {what} {path}: it is a file, not a folder")
    probe = path / f".write-check.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb"):
            pass
    except OSError as err:
        raise ProjectIOError(f"cannot write the {what} {path}: {describe_write_error(err)}") from err
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return path


def write_bytes_checked(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` (created or truncated) with os.write, raising on any short or failed
    write, then check the size on disk. cv2.imwrite and some buffered writers report success on a
    full disk; this path cannot (an OSError, e.g. ENOSPC, propagates)."""
    path = Path(path)
    view = memoryview(data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        while view:
            written = os.write(fd, view)
            if written <= 0:  # never seen in practice, but a zero write must not loop forever
                import errno

                raise OSError(errno.EIO, f"short write to {path}")
            view = view[written:]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    size = path.stat().st_size
    if size != len(data):
        import errno

        raise OSError(errno.EIO, f"{path} holds {size} bytes after writing {len(data)}")


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder so the renames in it are on disk (best effort: not every OS can open a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode_png(image, path_for_errors: str | os.PathLike = "") -> bytes:
    """A PNG of `image` (a numpy array) encoded in memory, to be written with write_bytes_checked."""
    import cv2

    try:
        ok, buffer = cv2.imencode(".png", image)
    except cv2.error as err:
        raise ProjectIOError(f"cannot encode {path_for_errors or 'a PNG'}: {err}") from err
    if not ok:
        raise ProjectIOError(f"cannot encode {path_for_errors or 'a PNG'}: OpenCV refused the image")
    return buffer.tobytes()


def write_png_checked(path: str | os.PathLike, image, *, fsync: bool = False) -> None:
    """Encode `image` as PNG in memory and write it through write_bytes_checked (ProjectIOError on failure)."""
    data = encode_png(image, path)
    try:
        write_bytes_checked(path, data, fsync=fsync)
    except OSError as err:
        raise ProjectIOError(f"cannot write {path}: {describe_os_error(err)}") from err


def damaged_zip_member(path: str | os.PathLike) -> str | None:
    """The first member of a zip file (torch.save's format) whose CRC-32 does not match; None when all
    match, the file carries no checksums (torch.save with `set_crc32_options(False)` writes 0 for each)
    or is no zip. torch.load does not check them, so bytes overwritten in a tensor (zeros from a bad
    copy) would load as weights that silently track badly. About 5 ms for a 4 MB file."""
    try:
        with zipfile.ZipFile(path) as archive:
            if all(info.CRC == 0 for info in archive.infolist()):
                return None
            return archive.testzip()
    except Exception:  # noqa: BLE001 (an odd zip the reader took: its own reader says what is wrong)
        return None


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (a lock or a temporary folder's owner)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


#: Test-only: a crash point's name (`crash_point`); the process kills itself (SIGKILL) there, as a
#: power cut or an OOM kill would stop it. Used by the fault-injection tests and benchmark.
CRASH_AT_ENV = "NAPARI_HOTSPOT_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, when the CRASH_AT_ENV variable names this point."""
    if os.environ.get(CRASH_AT_ENV) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


_STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def staged_files(out_dir: str | os.PathLike, what: str = "export"):
    """Yield a hidden staging folder inside `out_dir` to write a set of files into (subfolders allowed);
    once the block ends without an error, each staged file replaces its namesake in `out_dir`. A write
    error (a full disk) or Ctrl-C in the block leaves the files already in `out_dir` as they were, and
    the staging folder is removed; one a killed process left behind is removed by the next export."""
    import shutil

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(_STAGING_PREFIX + "*"):
            owner = stale.name[len(_STAGING_PREFIX):].split("-")[0]
            if owner.isdigit() and not pid_alive(int(owner)):
                shutil.rmtree(stale, ignore_errors=True)
        stage = out / f"{_STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
    except OSError as err:
        raise ProjectIOError(f"cannot write the {what} into {out}: {describe_os_error(err)}") from err
    try:
        yield stage
        try:
            for source in sorted(p for p in stage.rglob("*") if p.is_file()):
                target = out / source.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)  # same file system: a rename, which a full disk cannot fail
        except OSError as err:
            raise ProjectIOError(f"cannot move the {what} into {out}: {describe_os_error(err)}") from err
    finally:
        shutil.rmtree(stage, ignore_errors=True)
