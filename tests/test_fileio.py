"""fileio.atomic_write: the one atomic-write helper of every exporter and cache."""

import pytest

from napari_hotspot.errors import ProjectIOError
from napari_hotspot.fileio import atomic_write


def test_atomic_write_replaces_the_file_only_when_complete(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with atomic_write(target) as handle:
        handle.write("a,b\r\n")
        assert target.read_text() == "old\n"  # untouched until the write completes
    assert target.read_bytes() == b"a,b\r\n"  # newlines as written
    with atomic_write(tmp_path / "blob.bin", "wb", fsync=True) as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "out.csv"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("previous")
    with pytest.raises(ValueError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise ValueError("NaN in the data")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as handle:
            raise KeyboardInterrupt
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_os_errors_become_project_errors_naming_the_file(tmp_path):
    missing_dir = tmp_path / "no" / "such" / "dir" / "file.json"
    with pytest.raises(ProjectIOError, match=r"cannot write COCO file .*file\.json"):
        with atomic_write(missing_dir, what="COCO file") as handle:
            handle.write("{}")
    with pytest.raises(ProjectIOError, match="No space left"):
        with atomic_write(tmp_path / "full.bin", "wb") as handle:
            raise OSError(28, "No space left on device")
    assert not list(tmp_path.iterdir())
    with atomic_write(missing_dir, "wb", parents=True) as handle:  # folders made first when asked
        handle.write(b"{}")
    assert missing_dir.read_bytes() == b"{}"
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "a"):
            pass
