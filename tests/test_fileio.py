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


def test_damaged_zip_member_finds_overwritten_bytes_and_passes_files_without_checksums(tmp_path):
    import torch

    from napari_hotspot.fileio import damaged_zip_member

    state = {"w": torch.arange(8192, dtype=torch.float32)}
    good = tmp_path / "good.pt"
    torch.save(state, good)
    assert damaged_zip_member(good) is None
    data = bytearray(good.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    (tmp_path / "zeroed.pt").write_bytes(bytes(data))
    assert damaged_zip_member(tmp_path / "zeroed.pt") is not None
    torch.serialization.set_crc32_options(False)  # a writer that stores no checksums (each CRC 0)
    try:
        torch.save(state, tmp_path / "no_crc.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert damaged_zip_member(tmp_path / "no_crc.pt") is None
    (tmp_path / "text.pt").write_text("not a zip")
    assert damaged_zip_member(tmp_path / "text.pt") is None  # the reader's own error names it
